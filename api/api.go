// Package api is the HTTP transport: huma on net/http. Every operation of the generated
// table is served at its literal path, POST only. The adapter resolves the bearer token,
// reads the body within a size limit and hands both to the dispatcher, whose answer it
// writes as is; it also serves the spec.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/apidocs"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/problem"
)

// Resolver turns a bearer token into the caller's identity.
type Resolver interface {
	Resolve(ctx context.Context, token string) (*auth.Identity, error)
	RedeemStreamTicket(ctx context.Context, ticket string) (*auth.Identity, error)
}

// Options tunes the HTTP transport.
type Options struct {
	// MaxBodyBytes bounds a request body (default 1 MiB); larger bodies get 413.
	MaxBodyBytes int64
	// Events is the log the SSE streams read.
	Events *events.Log
	// AuthorizeTopic says whether the caller in ctx may follow a topic.
	AuthorizeTopic func(ctx context.Context, topic string) error
	// KeepAlive is the interval of the SSE keep-alive comments (default 15s).
	KeepAlive time.Duration
	// WriteTimeout bounds each write of an SSE stream (default 10s): a client that does not
	// read for that long is dropped.
	WriteTimeout time.Duration
	// BodyTimeout bounds how long a request body may take to arrive (default 10s); a body
	// that trickles in slower is answered 408.
	BodyTimeout time.Duration
}

// API serves the operations over HTTP.
type API struct {
	huma     huma.API
	dispatch *dispatch.Dispatcher
	resolver Resolver
	log      *slog.Logger
	opts     Options

	mu      sync.Mutex
	streams map[*openStream]struct{} // the SSE streams being served, to end on revocation
}

// openStream is an SSE stream being served: whose it is, and how to end it.
type openStream struct {
	id  *auth.Identity
	end context.CancelFunc
}

// EndStreams ends the SSE streams opened with an identity that matches — of a revoked
// token, or with a profile's former rights — and says how many. A client of an ended stream
// reconnects with Last-Event-ID and is authorized again.
func (a *API) EndStreams(match func(*auth.Identity) bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for st := range a.streams {
		if match(st.id) {
			st.end()
			delete(a.streams, st)
			n++
		}
	}
	return n
}

// track registers a stream until the returned function is called.
func (a *API) track(st *openStream) (untrack func()) {
	a.mu.Lock()
	if a.streams == nil {
		a.streams = map[*openStream]struct{}{}
	}
	a.streams[st] = struct{}{}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(a.streams, st)
		a.mu.Unlock()
	}
}

// Mount registers every operation, the spec and the fallback handlers on mux.
func Mount(mux *http.ServeMux, d *dispatch.Dispatcher, r Resolver, log *slog.Logger, opts Options) *API {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 10 * time.Second
	}
	contract := d.Contract()
	cfg := huma.DefaultConfig(contract.Doc.Info.Title, contract.Version())
	// glow serves openapi.yaml itself, and no huma-invented schema or docs paths.
	cfg.OpenAPIPath, cfg.DocsPath, cfg.SchemasPath = "", "", ""
	cfg.CreateHooks = nil
	cfg.Components.Schemas = contract.Registry
	a := &API{huma: humago.New(mux, cfg), dispatch: d, resolver: r, log: log, opts: opts}

	for i := range gen.Operations {
		op := &gen.Operations[i]
		hop := a.operation(op)
		a.huma.OpenAPI().AddOperation(hop)
		a.huma.Adapter().Handle(hop, a.serve(op))
		mux.HandleFunc(op.Path, methodNotAllowed) // any method but POST
	}
	for _, st := range gen.Streams {
		hop := &huma.Operation{OperationID: st.ID, Method: http.MethodGet, Path: st.Path, Tags: []string{st.Artifact},
			Summary: "Follow a topic over server-sent events",
			Responses: map[string]*huma.Response{
				"200":     {Description: "The stream.", Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{Type: "string"}}}},
				"default": {Description: "A problem document.", Content: map[string]*huma.MediaType{"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/Problem"}}}},
			}}
		a.huma.OpenAPI().AddOperation(hop)
		a.huma.Adapter().Handle(hop, func(hc huma.Context) {
			r, w := humago.Unwrap(hc)
			a.stream(w, r, st)
		})
	}
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(glow.Spec)
	})
	specJSON, err := json.Marshal(contract.Doc)
	if err != nil {
		panic(fmt.Sprintf("api: encode the spec as JSON: %v", err)) // the spec was validated at load
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(specJSON)
	})
	if err := apidocs.Mount(mux, specJSON); err != nil {
		panic(err) // the embedded renderer and the spec were checked at build and load
	}
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("/", notFound)
	return a
}

// OpenAPI is the document huma assembled from the registered operations.
func (a *API) OpenAPI() *huma.OpenAPI { return a.huma.OpenAPI() }

// operation describes op to huma with the spec's own schemas.
func (a *API) operation(op *gen.Operation) *huma.Operation {
	problemJSON := map[string]*huma.MediaType{"application/problem+json": {Schema: &huma.Schema{Ref: "#/components/schemas/Problem"}}}
	hop := &huma.Operation{
		OperationID: op.ID,
		Method:      op.Method,
		Path:        op.Path,
		Summary:     op.Summary,
		Tags:        []string{op.Artifact},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/" + op.RequestSchema}},
		}},
		Responses: map[string]*huma.Response{
			"200": {Description: "OK", Content: map[string]*huma.MediaType{
				"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/" + op.ResponseSchema}},
			}},
			"default": {Description: "A problem document.", Content: problemJSON},
		},
		MaxBodyBytes: a.opts.MaxBodyBytes,
	}
	if op.Public {
		hop.Security = []map[string][]string{}
	}
	return hop
}

func (a *API) serve(op *gen.Operation) func(huma.Context) {
	return func(hc huma.Context) {
		r, w := humago.Unwrap(hc)
		a.handle(w, r, op)
	}
}

// identify resolves the request's bearer token, if any, into the context, or says why the
// request is refused.
func (a *API) identify(r *http.Request) (context.Context, *problem.Problem) {
	ctx := r.Context()
	value := r.Header.Get("Authorization")
	if value == "" {
		return ctx, nil
	}
	token, ok := auth.ParseBearer(value)
	if !ok {
		return ctx, problem.Unauthorized(`the Authorization header must be "Bearer <token>"`)
	}
	id, err := a.resolver.Resolve(ctx, token)
	if errors.Is(err, auth.ErrUnauthorized) {
		return ctx, problem.Unauthorized("unknown or revoked token")
	}
	if err != nil {
		a.log.Error("resolve token", "path", r.URL.Path, "err", err)
		return ctx, problem.New(http.StatusInternalServerError, "the token could not be checked")
	}
	return auth.NewContext(ctx, id), nil
}

func (a *API) handle(w http.ResponseWriter, r *http.Request, op *gen.Operation) {
	start := time.Now()
	ctx, body, p := a.admit(w, r)
	if p != nil {
		a.dispatch.Refused(ctx, op.ID, dispatch.HTTP, p.Status, start)
		writeProblem(w, p)
		return
	}
	res := a.dispatch.Do(ctx, op, body, dispatch.HTTP)
	w.Header().Set("Glow-Call-Id", res.CallID.String())
	if res.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.RetryAfter))
	}
	write(w, res.Status, res.Body)
}

// admit identifies the caller and reads the request's body, or says why the request is
// refused. The body is read as JSON whatever its Content-Type says (curl -d sends a form
// type), within the body timeout.
func (a *API) admit(w http.ResponseWriter, r *http.Request) (context.Context, []byte, *problem.Problem) {
	ctx, p := a.identify(r)
	if p != nil {
		return ctx, nil, p
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(a.opts.BodyTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, a.opts.MaxBodyBytes+1))
	_ = rc.SetReadDeadline(time.Time{})
	if timedOut(err) {
		w.Header().Set("Connection", "close")
		return ctx, nil, problem.New(http.StatusRequestTimeout, fmt.Sprintf("the request body took longer than %s to arrive", a.opts.BodyTimeout))
	}
	if err != nil {
		return ctx, nil, problem.BadRequest("the request body could not be read")
	}
	if int64(len(body)) > a.opts.MaxBodyBytes {
		return ctx, nil, problem.New(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the request body is larger than %d bytes", a.opts.MaxBodyBytes))
	}
	return ctx, body, nil
}

// timedOut says whether err is a deadline's.
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// write answers with a JSON body, or a problem document when status is 400 or more.
func write(w http.ResponseWriter, status int, body []byte) {
	if status >= http.StatusBadRequest {
		w.Header().Set("Content-Type", "application/problem+json")
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="glow"`)
		}
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeProblem(w http.ResponseWriter, p *problem.Problem) {
	body, _ := json.Marshal(p)
	write(w, p.Status, body)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeProblem(w, problem.New(http.StatusMethodNotAllowed,
		fmt.Sprintf("%s takes POST with a JSON body, not %s", r.URL.Path, r.Method)))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, problem.New(http.StatusNotFound,
		fmt.Sprintf("no operation at %s %s; /openapi.yaml lists them all", r.Method, r.URL.Path)))
}

// index answers GET / with where to go next: a page linking to them for a browser, JSON
// otherwise.
func (a *API) index(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, indexPage, html.EscapeString(a.dispatch.Contract().Version()), len(gen.Operations))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"name":       "glow",
		"version":    a.dispatch.Contract().Version(),
		"openapi":    "/openapi.yaml",
		"docs":       "/docs",
		"socketio":   "/socket.io/",
		"operations": len(gen.Operations),
	})
}

const indexPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>glow</title></head>
<body>
<h1>glow %s</h1>
<p>%d operations, over HTTP (<code>POST /&lt;artifact&gt;/&lt;op&gt;</code>) and socket.io (<code>/socket.io/</code>).</p>
<ul>
<li><a href="/docs">API reference</a></li>
<li><a href="/openapi.yaml">openapi.yaml</a> · <a href="/openapi.json">openapi.json</a></li>
<li><a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></li>
</ul>
</body>
</html>
`
