package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	glowspec "github.com/glowhq/glow"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/mcptools"
)

// mcpServe is glow mcp: the operations as MCP tools over stdio, each call made to a glow
// server over HTTP with the token.
func mcpServe(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("GLOW_URL", "http://127.0.0.1:8080"), "the glow server the tools call (GLOW_URL)")
	token := fs.String("token", os.Getenv("GLOW_TOKEN"), "the bearer token the tools call with (GLOW_TOKEN)")
	timeout := fs.Duration("timeout", 2*time.Minute, "longest one tool call may take")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: glow mcp [--url URL] [--token TOKEN]\n\n"+
			"Serves every operation of glow's API as an MCP tool over stdio (one tool per operationId,\n"+
			"its input schema the request's), calling the server at --url with --token.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	if *token == "" {
		fmt.Fprintln(stderr, "glow mcp: a token is needed: --token or GLOW_TOKEN (glow token create makes one)")
		return errUsage
	}
	contract, err := dispatch.NewContract(glowspec.Spec)
	if err != nil {
		return err
	}
	spec, err := json.Marshal(contract.Doc)
	if err != nil {
		return err
	}
	srv, err := mcptools.NewServer(spec, contract.Version(), mcptools.Remote(*url, *token, &http.Client{Timeout: *timeout}))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx, &mcp.StdioTransport{})
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
