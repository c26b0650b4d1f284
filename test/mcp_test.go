package test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// bearer adds a token to every request.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// mcpConnect opens an MCP session to the server's /mcp with token, with the SDK's client.
func mcpConnect(t *testing.T, env *testserver.Env, token string) (*mcp.ClientSession, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "glow-test", Version: "1"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: env.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{token}}, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		t.Cleanup(func() { session.Close() })
	}
	return session, err
}

// mcpCall calls a tool and returns whether it is an error and its text.
func mcpCall(t *testing.T, s *mcp.ClientSession, tool string, args any) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	return res.IsError, text.String()
}

// /mcp serves one tool per operation — named by its operationId, described by the spec, its
// input schema the request's — to a client with a bearer token, through the dispatcher and
// its permissions: a call answers what HTTP answers, a refused or invalid one is an error
// result with the problem document. Without a valid token there is no session.
func TestMCPToolsOverStreamableHTTP(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	token := env.Token(t, "mcp-learner", "learner")
	s, err := mcpConnect(t, env, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	listed := map[string]*mcp.Tool{}
	for tool, err := range s.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		listed[tool.Name] = tool
	}
	if len(listed) != len(gen.Operations) {
		t.Errorf("%d tools, want one per operation (%d)", len(listed), len(gen.Operations))
	}
	for _, op := range gen.Operations {
		tool := listed[op.ID]
		if tool == nil {
			t.Errorf("no tool %s", op.ID)
			continue
		}
		schema, _ := json.Marshal(tool.InputSchema)
		if !strings.Contains(tool.Description, op.Summary) || !strings.Contains(string(schema), `"type":"object"`) {
			t.Errorf("tool %s: description %q, schema %s", op.ID, tool.Description, schema)
		}
	}
	create, _ := json.Marshal(listed["persona.create"].InputSchema)
	if !strings.Contains(string(create), `"$defs"`) || strings.Contains(string(create), "#/components/") {
		t.Errorf("persona.create's input schema does not carry its components as $defs: %s", create)
	}

	if isErr, text := mcpCall(t, s, "profile.context", map[string]any{}); isErr || !strings.Contains(text, `"name":"mcp-learner"`) {
		t.Errorf("profile.context: error %v, %s", isErr, text)
	}
	if isErr, text := mcpCall(t, s, "persona.create", map[string]any{"personas": []any{map[string]any{"name": "Nope"}}}); !isErr || !strings.Contains(text, `"status":403`) {
		t.Errorf("persona.create as a learner: error %v, %s; want the 403 problem", isErr, text)
	}
	if isErr, text := mcpCall(t, s, "persona.search", map[string]any{"page_size": 0}); !isErr || !strings.Contains(text, `"status":422`) {
		t.Errorf("persona.search with page_size 0: error %v, %s; want the 422 problem", isErr, text)
	}
	if !strings.Contains(env.Logs(), "op=profile.context transport=mcp status=200") {
		t.Error("no access log line of the MCP call")
	}

	if _, err := mcpConnect(t, env, "glow_nope"); err == nil {
		t.Error("a session with an unknown token")
	}
	tok, err := env.Server.Store.Q().TokenByHash(ctx, auth.HashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Server.Store.Q().RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	// The server follows revocations within its poll (half a second); every request is checked.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "profile.context", Arguments: map[string]any{}}); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("calls with a revoked token still go through after 5 s")
		}
	}
}
