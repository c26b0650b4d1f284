package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// glow mcp serves the operations as MCP tools over stdio, calling a server with its token:
// the SDK's client, running the binary, lists one tool per operation and gets a call
// answered as the token's profile.
func TestMCPOverStdio(t *testing.T) {
	bin := buildGlow(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	token := env.Token(t, "stdio-learner", "learner")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "glow-test", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(bin, "mcp", "--url", env.URL, "--token", token)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	n := 0
	for _, err := range session.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(gen.Operations) {
		t.Errorf("%d tools, want %d", n, len(gen.Operations))
	}
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "profile.context", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := res.Content[0].(*mcp.TextContent)
	if res.IsError || text == nil || !strings.Contains(text.Text, `"name":"stdio-learner"`) {
		t.Errorf("profile.context over stdio: error %v, %+v", res.IsError, res.Content)
	}
}

// glow mcp without a token says how to get one.
func TestMCPNeedsAToken(t *testing.T) {
	t.Setenv("GLOW_TOKEN", "")
	code, _, stderr := glow(t, "mcp")
	if code != 2 || !strings.Contains(stderr, "glow token create") {
		t.Errorf("glow mcp with no token: exit %d, %q", code, stderr)
	}
}
