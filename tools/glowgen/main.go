// Command glowgen reads openapi.yaml and writes gen/operations.gen.go: the operation table
// shared by the HTTP and socket.io transports, the Handlers interface and the SSE streams. It
// fails when a path breaks the naming rules (POST /<artifact>/<op>, operationId derived from
// the path; GET only for /<artifact>/stream).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

func main() {
	spec := flag.String("spec", "openapi.yaml", "the OpenAPI document to read")
	out := flag.String("out", "gen/operations.gen.go", "the Go file to write")
	flag.Parse()
	if err := run(*spec, *out); err != nil {
		fmt.Fprintf(os.Stderr, "glowgen: %v\n", err)
		os.Exit(1)
	}
}

func run(specPath, outPath string) error {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	ops, streams, err := Load(data)
	if err != nil {
		return fmt.Errorf("%s:\n%w", specPath, err)
	}
	topics, err := LoadTopics(data)
	if err != nil {
		return fmt.Errorf("%s:\n%w", specPath, err)
	}
	src, err := Render(ops, streams, topics)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(outPath); err == nil && bytes.Equal(old, src) {
		return nil
	}
	return os.WriteFile(outPath, src, 0o644)
}
