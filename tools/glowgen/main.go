// Command glowgen reads openapi.yaml and writes gen/operations.gen.go: the operation table
// shared by the HTTP and socket.io transports, the Handlers interface and the SSE streams;
// and, with -ts, the TypeScript client's socket.io event maps. It
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
	ts := flag.String("ts", "", "the TypeScript file of the client's socket.io event maps to write, if any")
	flag.Parse()
	if err := run(*spec, *out, *ts); err != nil {
		fmt.Fprintf(os.Stderr, "glowgen: %v\n", err)
		os.Exit(1)
	}
}

func run(specPath, outPath, tsPath string) error {
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
	if err := write(outPath, src); err != nil || tsPath == "" {
		return err
	}
	events, err := LoadEvents(data)
	if err != nil {
		return fmt.Errorf("%s:\n%w", specPath, err)
	}
	return write(tsPath, RenderTS(ops, events))
}

// write writes a generated file, unless it already holds src.
func write(path string, src []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, src) {
		return nil
	}
	return os.WriteFile(path, src, 0o644)
}
