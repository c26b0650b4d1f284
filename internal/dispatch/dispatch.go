// Package dispatch runs one operation for either transport. The HTTP and socket.io adapters
// hand it the operation, the raw JSON body and a context carrying the caller's identity; it
// authorizes, parses, validates against the spec, applies idempotency keys, calls the
// handler, turns errors into problem documents and emits the call's lifecycle events. Both
// transports therefore answer the same input with the same status and body.
package dispatch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/node"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// Transport names where a call came from, in lifecycle events.
type Transport string

// The transports.
const (
	HTTP     Transport = "http"
	SocketIO Transport = "socketio"
	MCP      Transport = "mcp"
)

// Result is a call's answer: the HTTP status and body, which a socket.io ack carries as
// {"status", "body"}. A status of 400 or more means Body is a problem document.
type Result struct {
	Status int
	Body   json.RawMessage
	CallID uuid.UUID
	// RetryAfter is, with 429, the seconds after which the call may be tried again.
	RetryAfter int
}

// Options tunes a Dispatcher.
type Options struct {
	// CallTimeout bounds how long one handler may run (default 60s).
	CallTimeout time.Duration
	// IdempotencyStale is how long an unfinished idempotency reservation blocks retries
	// before a retry may take it over (default 5 minutes).
	IdempotencyStale time.Duration
	// Observer, when set, is told of every call as its access log line is written.
	Observer Observer
}

// Observer is told of every call, those its transport refused included: the operationId
// ("" for a name the caller sent that is none), the transport, the status answered and how
// long the call took.
type Observer interface {
	ObserveCall(op string, transport Transport, status int, took time.Duration)
}

// Dispatcher runs operations.
type Dispatcher struct {
	contract *Contract
	handlers gen.Handlers
	store    *store.Store
	events   *events.Log
	log      *slog.Logger
	opts     Options
	calls    atomic.Int64
}

// Calls counts the calls run since start.
func (d *Dispatcher) Calls() int64 { return d.calls.Load() }

// New returns a dispatcher calling h.
func New(c *Contract, h gen.Handlers, s *store.Store, ev *events.Log, log *slog.Logger, opts Options) *Dispatcher {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 60 * time.Second
	}
	if opts.IdempotencyStale <= 0 {
		opts.IdempotencyStale = 5 * time.Minute
	}
	return &Dispatcher{contract: c, handlers: h, store: s, events: ev, log: log, opts: opts}
}

// Contract is the spec the dispatcher validates with.
func (d *Dispatcher) Contract() *Contract { return d.contract }

// call is one run of an operation.
type call struct {
	d         *Dispatcher
	op        *gen.Operation
	id        *auth.Identity
	transport Transport
	callID    uuid.UUID
}

// Do runs op on a raw JSON request body. ctx carries the caller's identity, if any.
func (d *Dispatcher) Do(ctx context.Context, op *gen.Operation, body []byte, transport Transport) Result {
	d.calls.Add(1)
	start := time.Now()
	c := &call{d: d, op: op, id: auth.FromContext(ctx), transport: transport, callID: store.NewID()}
	if c.id == nil && !op.Public {
		res := c.problem(problem.Unauthorized("a bearer token is required"))
		c.logAccess(ctx, res, start)
		return res
	}
	parsed, perr := parse(body)
	c.emitStarted(body, parsed, perr)

	ctx, cancel := context.WithTimeout(ctx, max(d.opts.CallTimeout, op.Timeout))
	defer cancel()
	res := c.run(ctx, body, parsed, perr)

	c.emitFinished(res)
	c.logAccess(ctx, res, start)
	return res
}

// logAccess writes the call's line of the access log.
func (c *call) logAccess(ctx context.Context, res Result, start time.Time) {
	c.d.observe(c.op.ID, c.transport, res.Status, start)
	c.d.logAccess(ctx, c.op.ID, c.transport, res.Status, start, c.id, c.callID.String())
}

// Refused writes the access log line of a call that its transport answered itself, before
// the dispatcher (a bad token, an unreadable or oversized body, an unknown operation, a socket
// over its call limit): op is the operation or event the caller named, as given.
func (d *Dispatcher) Refused(ctx context.Context, op string, transport Transport, status int, start time.Time) {
	if _, known := gen.OperationByID(op); known {
		d.observe(op, transport, status, start)
	} else {
		d.observe("", transport, status, start)
	}
	if len(op) > maxLoggedOp {
		op = op[:maxLoggedOp] + "…"
	}
	d.logAccess(ctx, op, transport, status, start, auth.FromContext(ctx), "")
}

// maxLoggedOp bounds what the access log shows of a name a caller sent.
const maxLoggedOp = 128

// observe tells the observer, if any, of a call.
func (d *Dispatcher) observe(op string, transport Transport, status int, start time.Time) {
	if d.opts.Observer != nil {
		d.opts.Observer.ObserveCall(op, transport, status, time.Since(start))
	}
}

// logAccess writes a line of the access log, at info: the operation, transport, status,
// duration, the calling profile (none for an anonymous call) and the call's id (none for a
// call refused before it ran).
func (d *Dispatcher) logAccess(ctx context.Context, op string, transport Transport, status int, start time.Time,
	id *auth.Identity, callID string) {
	if !d.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	profile := ""
	if id != nil {
		profile = id.ProfileID.String()
	}
	d.log.LogAttrs(ctx, slog.LevelInfo, "call", slog.String("op", op), slog.String("transport", string(transport)),
		slog.Int("status", status), slog.Duration("duration", time.Since(start)), slog.String("profile", profile),
		slog.String("call_id", callID))
}

func (c *call) run(ctx context.Context, body []byte, parsed any, perr *problem.Problem) (res Result) {
	defer func() {
		if r := recover(); r != nil {
			c.d.log.Error("handler panicked", "op", c.op.ID, "call_id", c.callID, "panic", r, "stack", string(debug.Stack()))
			res = c.internalError()
		}
	}()
	if c.id != nil && !c.op.Public && !c.id.Can(c.op.Artifact, c.op.Name) {
		return c.problem(problem.Forbidden("role %q may not call %s", c.id.Role, c.op.ID))
	}
	if perr != nil {
		return c.problem(perr)
	}
	if errs := c.d.contract.ValidateRequest(c.op.ID, parsed); errs != nil {
		return c.problem(problem.Invalid("validation failed", errs...))
	}
	req, perr := c.decode(body, parsed)
	if perr != nil {
		return c.problem(perr)
	}
	if key := idempotencyKey(c.op, parsed); key != "" && c.id != nil {
		return c.idempotent(ctx, key, parsed, req)
	}
	return c.invoke(ctx, req)
}

// MaxDepth bounds how deeply a request body may nest objects and arrays.
const MaxDepth = 32

// parse reads the body as JSON. Beside an empty body and broken JSON, it refuses with 400 what
// no schema could accept and some peers cannot even carry: text that is not UTF-8, and
// nesting deeper than MaxDepth; and with 422 text holding NUL, which PostgreSQL cannot store.
func parse(body []byte) (any, *problem.Problem) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, problem.BadRequest("request body is required")
	}
	if !utf8.Valid(body) {
		return nil, problem.BadRequest("request body is not valid UTF-8")
	}
	if tooDeep(body, MaxDepth) {
		return nil, problem.BadRequest(fmt.Sprintf("request body nests objects and arrays deeper than %d levels", MaxDepth))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, problem.BadRequest("request body is not valid JSON",
			problem.Detail{Location: "body", Message: err.Error()})
	}
	if at := nulAt(v, "body"); at != "" {
		return nil, problem.Invalid("validation failed",
			problem.Detail{Location: at, Message: "text must not contain the NUL character (U+0000)"})
	}
	return v, nil
}

// tooDeep says whether JSON text nests objects and arrays deeper than limit.
func tooDeep(b []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// nulAt returns where a decoded body has a string (or a property name) with NUL, or "".
func nulAt(v any, at string) string {
	switch v := v.(type) {
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return at
		}
	case []any:
		for i, item := range v {
			if found := nulAt(item, at+"["+strconv.Itoa(i)+"]"); found != "" {
				return found
			}
		}
	case map[string]any:
		for k, item := range v {
			if strings.IndexByte(k, 0) >= 0 {
				return at
			}
			if found := nulAt(item, at+"."+k); found != "" {
				return found
			}
		}
	}
	return ""
}

// decode turns the validated body into the operation's request type, filling in the
// defaults the spec declares for absent top-level properties.
func (c *call) decode(body []byte, parsed any) (any, *problem.Problem) {
	src := body
	if defaults := c.d.contract.RequestDefaults(c.op.ID); len(defaults) > 0 {
		m, _ := parsed.(map[string]any)
		filled := make(map[string]any, len(m)+len(defaults))
		for k, v := range defaults {
			filled[k] = v
		}
		for k, v := range m {
			filled[k] = v
		}
		var err error
		if src, err = json.Marshal(filled); err != nil {
			return nil, problem.Invalid("validation failed", problem.Detail{Location: "body", Message: err.Error()})
		}
	}
	req := c.op.NewRequest()
	if err := json.Unmarshal(src, req); err != nil {
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body", Message: err.Error()})
	}
	return req, nil
}

func idempotencyKey(op *gen.Operation, parsed any) string {
	if !op.Idempotent {
		return ""
	}
	m, _ := parsed.(map[string]any)
	if _, accepting := m["accept"]; accepting {
		// The key names a call staged with soft: true, which this call carries out or
		// discards (handlers/soft.go); its receipt is the staged call's.
		return ""
	}
	key, _ := m["idempotency_key"].(string)
	return key
}

// idempotent runs the call at most once per (profile, key): a repeat with the same body gets
// the stored answer, a different body or a repeat while the first runs gets 409. Answers
// of 500 and above are not stored, so a retry runs the call again.
func (c *call) idempotent(ctx context.Context, key string, parsed, req any) Result {
	canonical, _ := json.Marshal(parsed) // encoding/json sorts map keys
	sum := sha256.Sum256(canonical)
	now := store.Now()
	claim := store.IdempotencyKey{ProfileID: c.id.ProfileID, Key: key, Operation: c.op.ID,
		RequestHash: hex.EncodeToString(sum[:]), CreatedAt: now, Owner: node.Self()}
	q := c.d.store.Q()
	prior, claimed, err := q.ClaimIdempotencyKey(ctx, claim, now.Add(-c.d.opts.IdempotencyStale), node.Gone)
	if err != nil {
		return c.errorResult(fmt.Errorf("claim idempotency key: %w", err))
	}
	if !claimed {
		switch {
		case prior.Operation != claim.Operation || prior.RequestHash != claim.RequestHash:
			return c.problem(problem.Conflict("idempotency key %q was already used with a different request", key))
		case prior.Status == nil:
			return c.problem(problem.Conflict("a call with idempotency key %q is still running", key))
		default:
			return Result{Status: *prior.Status, Body: prior.Response, CallID: c.callID}
		}
	}
	res := c.invoke(ctx, req)
	// The caller may be gone; the receipt must be written (or released) regardless.
	bg := context.WithoutCancel(ctx)
	if res.Status >= http.StatusInternalServerError || res.Status == http.StatusTooManyRequests {
		// A retry may succeed: it must run the call again.
		err = q.ReleaseIdempotencyKey(bg, c.id.ProfileID, key)
	} else {
		err = q.CompleteIdempotencyKey(bg, c.id.ProfileID, key, res.Status, res.Body)
	}
	if err != nil {
		c.d.log.Error("store idempotency receipt", "op", c.op.ID, "call_id", c.callID, "err", err)
	}
	return res
}

func (c *call) invoke(ctx context.Context, req any) Result {
	out, err := c.op.Call(ctx, c.d.handlers, req)
	if err != nil {
		return c.errorResult(err)
	}
	if out == nil {
		return c.errorResult(errors.New("handler returned neither a response nor an error"))
	}
	body, err := json.Marshal(out)
	if err != nil {
		return c.errorResult(fmt.Errorf("encode response: %w", err))
	}
	return Result{Status: http.StatusOK, Body: body, CallID: c.callID}
}

// errorResult answers a handler's error: problems as they are, anything else as a plain
// 500 whose cause is logged, never sent.
func (c *call) errorResult(err error) Result {
	var p *problem.Problem
	switch {
	case errors.As(err, &p):
		return c.problem(p)
	case errors.Is(err, context.DeadlineExceeded):
		return c.problem(problem.New(http.StatusGatewayTimeout, fmt.Sprintf("the call took longer than %s", c.d.opts.CallTimeout)))
	case errors.Is(err, context.Canceled):
		return c.problem(problem.New(http.StatusServiceUnavailable, "the call was cancelled: the client went away or the server is shutting down"))
	}
	c.d.log.Error("call failed", "op", c.op.ID, "call_id", c.callID, "transport", c.transport, "err", err)
	return c.internalError()
}

func (c *call) internalError() Result {
	p := problem.New(http.StatusInternalServerError, "an unexpected error occurred; it has been logged")
	p.Instance = "urn:uuid:" + c.callID.String()
	return c.problem(p)
}

func (c *call) problem(p *problem.Problem) Result {
	body, err := json.Marshal(p)
	if err != nil { // a Detail.Value that cannot be encoded
		p.Errors = nil
		body, _ = json.Marshal(p)
	}
	return Result{Status: p.Status, Body: body, CallID: c.callID, RetryAfter: p.RetryAfter}
}

// The lifecycle events (schemas CallStarted, CallCompleted and CallFailed in the spec) go to
// the caller's profile topic, which is live: nothing is built when nobody listens. Their JSON
// is written by hand around the request and response bodies, which are already JSON.

func (c *call) emitStarted(body []byte, parsed any, perr *problem.Problem) {
	if c.id == nil {
		return
	}
	topic := events.ProfileTopic(c.id.ProfileID)
	if !c.d.events.Wants(topic) {
		return
	}
	request := body
	switch {
	case perr != nil: // not a JSON value glow reads: report the text as a JSON string
		request, _ = json.Marshal(string(body))
	case c.d.contract.ops[c.op.ID].redactRequest != nil:
		request, _ = json.Marshal(c.d.contract.ops[c.op.ID].redactRequest.apply(parsed))
	}
	data := c.eventHead(len(request) + 16)
	data = append(data, `,"request":`...)
	data = append(data, request...)
	data = append(data, '}')
	c.d.events.Publish(events.Event{Topic: topic, Name: c.op.ID + ".started", Data: data})
}

func (c *call) emitFinished(res Result) {
	if c.id == nil {
		return
	}
	topic := events.ProfileTopic(c.id.ProfileID)
	if !c.d.events.Wants(topic) {
		return
	}
	suffix, body := ".completed", res.Body
	if res.Status >= http.StatusBadRequest {
		suffix = ".failed"
	} else if r := c.d.contract.ops[c.op.ID].redactResponse; r != nil {
		var v any
		if json.Unmarshal(body, &v) == nil {
			body, _ = json.Marshal(r.apply(v))
		}
	}
	data := c.eventHead(len(body) + 32)
	data = append(data, `,"status":`...)
	data = strconv.AppendInt(data, int64(res.Status), 10)
	data = append(data, `,"body":`...)
	data = append(data, body...)
	data = append(data, '}')
	c.d.events.Publish(events.Event{Topic: topic, Name: c.op.ID + suffix, Data: data})
}

// eventHead starts a lifecycle event's JSON: {"call_id":…,"operation":…,"transport":…
// (operation ids and transports are plain ASCII names, written as they are).
func (c *call) eventHead(extra int) []byte {
	b := make([]byte, 0, 96+len(c.op.ID)+extra)
	b = append(b, `{"call_id":"`...)
	b = append(b, c.callID.String()...)
	b = append(b, `","operation":"`...)
	b = append(b, c.op.ID...)
	b = append(b, `","transport":"`...)
	b = append(b, c.transport...)
	return append(b, '"')
}
