package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// Operation is one operation of the spec, with the names the generated code uses.
type Operation struct {
	ID         string // operationId == socket.io event, e.g. "attempt.chat_message"
	Artifact   string // first path segment, e.g. "attempt"
	Name       string // the rest of the path joined by "_", e.g. "chat_message"
	Method     string // always POST
	Path       string // e.g. "/attempt/chat/message"
	Summary    string
	GoName     string // Handlers method name, e.g. "AttemptChatMessage"
	Request    string // request body schema, always GoName+"Request"
	Response   string // 200 response schema, always GoName+"Response"
	Public     bool   // security: [] — callable without a token
	Idempotent bool   // the request schema has an idempotency_key property
	Timeout    string // x-glow-timeout: how long the call may run, when longer than the server's default (a Go duration)
	Run        bool   // x-glow-run: the call starts a generation run, whose events follow
	Family     string // x-glow-family: the family whose one implementation serves it ("standard"), or ""
}

// Stream is an SSE endpoint, GET /<artifact>/stream: the one kind of path besides operations.
type Stream struct {
	ID       string // "<artifact>.stream"
	Artifact string
	Path     string
}

// segment is one path segment: lower-case letters, digits and underscores, starting with a letter.
var segment = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// EventName derives an operation's socket.io event from its path: the first segment, a dot,
// and the remaining segments joined by "_". "/test/invocation/run" gives "test.invocation_run".
// A path must have two or three segments.
func EventName(path string) (string, error) {
	if !strings.HasPrefix(path, "/") {
		return "", fmt.Errorf("path %q does not start with /", path)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 {
		return "", fmt.Errorf("path %q is not /<artifact>/<op> or /<artifact>/<sub>/<op>", path)
	}
	for _, p := range parts {
		if !segment.MatchString(p) {
			return "", fmt.Errorf("path %q has segment %q; segments are lower-case letters, digits and _ starting with a letter", path, p)
		}
	}
	return parts[0] + "." + strings.Join(parts[1:], "_"), nil
}

// GoName turns an event name into an exported Go identifier: "attempt.chat_message" gives
// "AttemptChatMessage".
func GoName(event string) string {
	var b strings.Builder
	for _, word := range strings.FieldsFunc(event, func(r rune) bool { return r == '.' || r == '_' }) {
		b.WriteString(strings.ToUpper(word[:1]) + word[1:])
	}
	return b.String()
}

// Load parses and validates an OpenAPI document and returns its operations and streams,
// sorted by ID. It reports every rule a path breaks, not just the first.
func Load(data []byte) ([]Operation, []Stream, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parse spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("invalid spec: %w", err)
	}

	var ops []Operation
	var streams []Stream
	var problems []string
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Find(path)
		for method, op := range item.Operations() {
			if method == http.MethodGet {
				st, errs := stream(path, op)
				for _, e := range errs {
					problems = append(problems, fmt.Sprintf("%s %s: %s", method, path, e))
				}
				if len(errs) == 0 {
					streams = append(streams, st)
				}
				continue
			}
			o, errs := operation(doc, path, method, op)
			for _, e := range errs {
				problems = append(problems, fmt.Sprintf("%s %s: %s", method, path, e))
			}
			if len(errs) == 0 {
				ops = append(ops, o)
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, nil, errors.New(strings.Join(problems, "\n"))
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	sort.Slice(streams, func(i, j int) bool { return streams[i].ID < streams[j].ID })
	return ops, streams, nil
}

// stream checks a GET path: only /<artifact>/stream, answering text/event-stream.
func stream(path string, op *openapi3.Operation) (Stream, []string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 2 || parts[1] != "stream" || !segment.MatchString(parts[0]) {
		return Stream{}, []string{"every operation is POST; the only GET paths are /<artifact>/stream"}
	}
	st := Stream{ID: parts[0] + ".stream", Artifact: parts[0], Path: path}
	var errs []string
	if op.OperationID != st.ID {
		errs = append(errs, fmt.Sprintf("operationId %q differs from the name derived from its path, %q", op.OperationID, st.ID))
	}
	if ok := op.Responses.Status(http.StatusOK); ok == nil || ok.Value == nil || ok.Value.Content.Get("text/event-stream") == nil {
		errs = append(errs, "a stream's 200 response must be text/event-stream")
	}
	return st, errs
}

// operation checks one operation against the naming rules and collects its generated names.
func operation(doc *openapi3.T, path, method string, op *openapi3.Operation) (Operation, []string) {
	var errs []string
	if method != http.MethodPost {
		errs = append(errs, "every operation is POST; the only GET paths are /<artifact>/stream")
	}
	event, err := EventName(path)
	if err != nil {
		return Operation{}, append(errs, err.Error())
	}
	if op.OperationID != event {
		errs = append(errs, fmt.Sprintf("operationId %q differs from the name derived from its path, %q", op.OperationID, event))
	}
	goName := GoName(event)
	o := Operation{
		ID:       event,
		Artifact: event[:strings.IndexByte(event, '.')],
		Name:     event[strings.IndexByte(event, '.')+1:],
		Method:   method,
		Path:     path,
		Summary:  op.Summary,
		GoName:   goName,
		Request:  goName + "Request",
		Response: goName + "Response",
		Public:   op.Security != nil && len(*op.Security) == 0,
	}

	var reqRef string
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		errs = append(errs, "has no request body")
	} else {
		if !op.RequestBody.Value.Required {
			errs = append(errs, "request body must be required")
		}
		reqRef = jsonSchemaRef(op.RequestBody.Value.Content)
		if reqRef != o.Request {
			errs = append(errs, fmt.Sprintf("request body must be application/json with $ref to schema %q (found %q)", o.Request, reqRef))
		}
	}
	ok := op.Responses.Status(http.StatusOK)
	if ok == nil || ok.Value == nil {
		errs = append(errs, "has no 200 response")
	} else if ref := jsonSchemaRef(ok.Value.Content); ref != o.Response {
		errs = append(errs, fmt.Sprintf("200 response must be application/json with $ref to schema %q (found %q)", o.Response, ref))
	}
	if reqRef == o.Request {
		if s := doc.Components.Schemas[reqRef]; s != nil && s.Value != nil {
			_, o.Idempotent = s.Value.Properties["idempotency_key"]
		}
	}
	if v, ok := op.Extensions["x-glow-run"]; ok {
		run, isBool := v.(bool)
		if !isBool {
			errs = append(errs, fmt.Sprintf("x-glow-run must be true or false (found %v)", v))
		}
		o.Run = run
	}
	if v, ok := op.Extensions["x-glow-family"]; ok {
		if v != "standard" {
			errs = append(errs, fmt.Sprintf("x-glow-family must be \"standard\" (found %v)", v))
		}
		o.Family, _ = v.(string)
	}
	if v, ok := op.Extensions["x-glow-timeout"]; ok {
		d, isString := v.(string)
		if _, err := time.ParseDuration(d); !isString || err != nil {
			errs = append(errs, fmt.Sprintf("x-glow-timeout must be a duration such as \"10m\" (found %v)", v))
		} else {
			o.Timeout = d
		}
	}
	return o, errs
}

// jsonSchemaRef returns the component name that application/json content refers to, or "".
func jsonSchemaRef(content openapi3.Content) string {
	mt := content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return ""
	}
	return strings.TrimPrefix(mt.Schema.Ref, "#/components/schemas/")
}

// Topic is one kind of topic of x-glow-topics: the first segment of the topics whose events
// it describes, and whether those events are stored.
type Topic struct {
	Kind    string // "profile" for profile/<id>
	Durable bool   // stored, numbered per topic and replayable across restarts; else live only
	Summary string
}

// LoadTopics reads the spec's x-glow-topics, the one table that says which events are stored:
// every kind of topic once, with durable true or false.
func LoadTopics(data []byte) ([]Topic, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	raw, ok := doc.Extensions["x-glow-topics"].([]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New("x-glow-topics must list the kinds of topic, each {kind, durable, summary}")
	}
	var topics []Topic
	var problems []string
	seen := map[string]bool{}
	for i, r := range raw {
		m, _ := r.(map[string]any)
		kind, _ := m["kind"].(string)
		durable, isBool := m["durable"].(bool)
		summary, _ := m["summary"].(string)
		switch {
		case !segment.MatchString(kind):
			problems = append(problems, fmt.Sprintf("x-glow-topics[%d]: kind %q must be a path segment (lower-case letters, digits, _)", i, kind))
		case seen[kind]:
			problems = append(problems, fmt.Sprintf("x-glow-topics[%d]: kind %q is listed twice", i, kind))
		case !isBool:
			problems = append(problems, fmt.Sprintf("x-glow-topics[%d]: %s must say durable: true or false", i, kind))
		default:
			seen[kind] = true
			topics = append(topics, Topic{Kind: kind, Durable: durable, Summary: summary})
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].Kind < topics[j].Kind })
	return topics, nil
}

// Event is one entry of x-glow-events: a pushed event (or, with a placeholder prefix
// "<operation>." or "<artifact>.", a family of them), its payload schema and its topic.
type Event struct {
	Name   string
	Schema string
	Topic  string
}

// LoadEvents reads the spec's x-glow-events; every schema it names must be a component.
func LoadEvents(data []byte) ([]Event, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	raw, ok := doc.Extensions["x-glow-events"].([]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New("x-glow-events must list the pushed events, each {name, schema, topic}")
	}
	var events []Event
	var problems []string
	for i, r := range raw {
		m, _ := r.(map[string]any)
		name, _ := m["name"].(string)
		schema, _ := m["schema"].(string)
		topic, _ := m["topic"].(string)
		if name == "" || doc.Components.Schemas[schema] == nil {
			problems = append(problems, fmt.Sprintf("x-glow-events[%d]: %q needs a name and a component schema (found %q)", i, name, schema))
			continue
		}
		events = append(events, Event{Name: name, Schema: schema, Topic: topic})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return events, nil
}
