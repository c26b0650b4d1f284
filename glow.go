// Package glow holds the API contract, openapi.yaml: the generator writes gen/ from it, and
// the server embeds it to validate requests and to serve it at /openapi.yaml.
package glow

import _ "embed"

//go:generate go tool oapi-codegen -config tools/oapi-codegen.yaml openapi.yaml
//go:generate go run ./tools/glowgen -spec openapi.yaml -out gen/operations.gen.go -ts clients/ts/src/events.gen.ts

// Spec is openapi.yaml.
//
//go:embed openapi.yaml
var Spec []byte
