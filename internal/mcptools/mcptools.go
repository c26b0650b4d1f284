// Package mcptools offers glow's operations as MCP tools (github.com/modelcontextprotocol/go-sdk):
// one tool per operation of openapi.yaml, named by its operationId, described by its summary
// and description, whose input schema is its request schema (with the components it uses as
// $defs) and whose result is the operation's answer — the response, or the problem document
// with isError. The server serves them at /mcp (streamable HTTP, the bearer token on every
// request) through the dispatcher; `glow mcp` serves them over stdio, calling a server over
// HTTP with its token.
package mcptools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
)

// Caller runs op with the request body for the caller of req, and returns the status and
// body HTTP would answer.
type Caller func(ctx context.Context, req *mcp.CallToolRequest, op *gen.Operation, body []byte) (int, []byte, error)

// NewServer returns an MCP server with a tool for every operation of spec (openapi.yaml as
// JSON), each calling call.
func NewServer(spec []byte, version string, call Caller) (*mcp.Server, error) {
	tools, err := Tools(spec)
	if err != nil {
		return nil, err
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "glow", Version: version}, nil)
	for i := range gen.Operations {
		op := &gen.Operations[i]
		srv.AddTool(tools[op.ID], func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			body := []byte(req.Params.Arguments)
			if len(body) == 0 || string(body) == "null" {
				body = []byte("{}")
			}
			status, answer, err := call(ctx, req, op, body)
			if err != nil {
				return nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(answer)}}, IsError: status >= 400}, nil
		})
	}
	return srv, nil
}

// Tools builds the tool of every operation from spec.
func Tools(spec []byte) (map[string]*mcp.Tool, error) {
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("mcptools: read the spec: %w", err)
	}
	tools := map[string]*mcp.Tool{}
	for _, op := range gen.Operations {
		var o struct {
			Description string `json:"description"`
		}
		_ = json.Unmarshal(doc.Paths[op.Path][strings.ToLower(op.Method)], &o)
		schema, err := inputSchema(op.RequestSchema, doc.Components.Schemas)
		if err != nil {
			return nil, fmt.Errorf("mcptools: %s: %w", op.ID, err)
		}
		tools[op.ID] = &mcp.Tool{
			Name:        op.ID,
			Title:       op.Summary,
			Description: strings.TrimSpace(op.Summary + ".\n\n" + o.Description),
			InputSchema: schema,
		}
	}
	return tools, nil
}

// refPrefix is how the spec refers to its components; the input schemas carry those they
// use as $defs.
const refPrefix = `"#/components/schemas/`

// inputSchema is the component schema name, with the components it refers to (directly or
// not) as $defs.
func inputSchema(name string, components map[string]json.RawMessage) (json.RawMessage, error) {
	defs := map[string]json.RawMessage{}
	var collect func(raw json.RawMessage)
	collect = func(raw json.RawMessage) {
		text := string(raw)
		for {
			i := strings.Index(text, refPrefix)
			if i < 0 {
				return
			}
			text = text[i+len(refPrefix):]
			ref := text[:strings.IndexByte(text, '"')]
			if _, seen := defs[ref]; !seen {
				defs[ref] = rewrite(components[ref])
				collect(components[ref])
			}
		}
	}
	root, ok := components[name]
	if !ok {
		return nil, fmt.Errorf("no component schema %q", name)
	}
	collect(root)
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(rewrite(root), &schema); err != nil {
		return nil, err
	}
	if len(defs) > 0 {
		all, _ := json.Marshal(defs)
		schema["$defs"] = all
	}
	if _, typed := schema["type"]; !typed {
		schema["type"] = json.RawMessage(`"object"`)
	}
	return json.Marshal(schema)
}

// rewrite points a schema's references at $defs.
func rewrite(raw json.RawMessage) json.RawMessage {
	return json.RawMessage(strings.ReplaceAll(string(raw), refPrefix, `"#/$defs/`))
}

// identityKey is where Verifier leaves the caller's identity in the token's info.
const identityKey = "glow.identity"

// Verifier checks the bearer token of every request to /mcp.
func Verifier(r interface {
	Resolve(ctx context.Context, token string) (*auth.Identity, error)
}) sdkauth.TokenVerifier {
	return func(ctx context.Context, token string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		id, err := r.Resolve(ctx, token)
		if err != nil {
			if errors.Is(err, auth.ErrUnauthorized) {
				return nil, fmt.Errorf("%w: unknown or revoked token", sdkauth.ErrInvalidToken)
			}
			return nil, err
		}
		return &sdkauth.TokenInfo{UserID: id.ProfileID.String(), Extra: map[string]any{identityKey: id}}, nil
	}
}

// Dispatch is the Caller of the server's /mcp: the dispatcher, as the token's identity.
func Dispatch(d *dispatch.Dispatcher) Caller {
	return func(ctx context.Context, req *mcp.CallToolRequest, op *gen.Operation, body []byte) (int, []byte, error) {
		if req.Extra != nil && req.Extra.TokenInfo != nil {
			if id, ok := req.Extra.TokenInfo.Extra[identityKey].(*auth.Identity); ok {
				ctx = auth.NewContext(ctx, id)
			}
		}
		res := d.Do(ctx, op, body, dispatch.MCP)
		return res.Status, res.Body, nil
	}
}

// Handler serves the tools over streamable HTTP, stateless (no session to keep or share
// between nodes), answering JSON, to requests with a valid bearer token.
func Handler(srv *mcp.Server, verify sdkauth.TokenVerifier) http.Handler {
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
		&mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	return sdkauth.RequireBearerToken(verify, &sdkauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}

// Remote is the Caller of `glow mcp`: POST <base><path> with the token, as any HTTP client.
func Remote(base, token string, client *http.Client) Caller {
	return func(ctx context.Context, _ *mcp.CallToolRequest, op *gen.Operation, body []byte) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+op.Path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, nil, fmt.Errorf("call %s: %w", op.ID, err)
		}
		defer res.Body.Close()
		answer, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer))
		return res.StatusCode, answer, err
	}
}

// maxAnswer bounds what Remote reads of an answer.
const maxAnswer = 32 << 20
