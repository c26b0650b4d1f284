package main

// glow <artifact> <op> …: every operation of openapi.yaml as a command, read from the spec
// the binary embeds (so the commands grow with the surface by themselves). The top-level
// scalar fields of the request are flags; --data gives a whole body. The answer is printed as
// JSON, or, for a search, as a table; the exit code says the status class.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	glowspec "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
)

// The exit codes of an operation command.
const (
	exitOK          = 0
	exitUnreachable = 1 // no answer: the server could not be reached, or its answer read
	exitClientError = 4 // a 4xx answer: the request, the token or its rights
	exitServerError = 5 // a 5xx answer
)

// findOperation finds the operation a command line names: its path segments, as many as
// match, such as "persona create" or "attempt chat message". It returns the operation and
// the arguments after its name.
func findOperation(args []string) (*gen.Operation, []string) {
	for n := min(len(args), 4); n >= 2; n-- {
		path := "/" + strings.Join(args[:n], "/")
		for i := range gen.Operations {
			if gen.Operations[i].Path == path {
				return &gen.Operations[i], args[n:]
			}
		}
	}
	return nil, nil
}

// isArtifact says whether name is the first segment of some operation's path.
func isArtifact(name string) bool {
	for _, op := range gen.Operations {
		if op.Artifact == name {
			return true
		}
	}
	return false
}

// artifactUsage lists an artifact's operations.
func artifactUsage(w io.Writer, artifact string) {
	fmt.Fprintf(w, "Usage: glow %s <operation> [flags]\n\nOperations:\n", artifact)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, op := range gen.Operations {
		if op.Artifact == artifact {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.ReplaceAll(strings.TrimPrefix(op.Path, "/"), "/", " "), op.Summary)
		}
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nRun \"glow %s <operation> -h\" for its flags.\n", artifact)
}

// field is a flag made of a top-level scalar field of a request.
type field struct {
	name, typ string // typ: string, integer, number or boolean
	value     string
	set       bool
}

func (f *field) String() string     { return f.value }
func (f *field) Set(v string) error { f.value, f.set = v, true; return nil }
func (f *field) IsBoolFlag() bool   { return f.typ == "boolean" }

// json is the field's value as JSON, by its type.
func (f *field) json() (json.RawMessage, error) {
	switch f.typ {
	case "integer":
		if _, err := strconv.ParseInt(f.value, 10, 64); err != nil {
			return nil, fmt.Errorf("--%s takes a whole number, not %q", f.name, f.value)
		}
		return json.RawMessage(f.value), nil
	case "number":
		if _, err := strconv.ParseFloat(f.value, 64); err != nil {
			return nil, fmt.Errorf("--%s takes a number, not %q", f.name, f.value)
		}
		return json.RawMessage(f.value), nil
	case "boolean":
		b, err := strconv.ParseBool(f.value)
		if err != nil {
			return nil, fmt.Errorf("--%s takes true or false, not %q", f.name, f.value)
		}
		return json.Marshal(b)
	}
	return json.Marshal(f.value)
}

// scalarFields are the request's top-level fields a flag can give, sorted by name.
func scalarFields(contract *dispatch.Contract, op *gen.Operation) ([]*field, map[string]string) {
	ref := contract.Doc.Components.Schemas[op.RequestSchema]
	docs := map[string]string{}
	var fields []*field
	if ref == nil || ref.Value == nil {
		return nil, docs
	}
	for name, p := range ref.Value.Properties {
		if p.Value == nil {
			continue
		}
		for _, typ := range []string{"string", "integer", "number", "boolean"} {
			if p.Value.Type.Is(typ) {
				fields = append(fields, &field{name: name, typ: typ})
				docs[name] = fieldDoc(p.Value, typ)
			}
		}
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].name < fields[j].name })
	return fields, docs
}

// startsRun says whether the spec marks op x-glow-run: it starts a generation run.
func startsRun(contract *dispatch.Contract, op *gen.Operation) bool {
	item := contract.Doc.Paths.Value(op.Path)
	if item == nil || item.Post == nil {
		return false
	}
	run, _ := item.Post.Extensions["x-glow-run"].(bool)
	return run
}

// fieldDoc is a flag's help: the field's description and type.
func fieldDoc(s *openapi3.Schema, typ string) string {
	doc := strings.TrimSpace(strings.SplitN(s.Description, "\n", 2)[0])
	if len(s.Enum) > 0 {
		var vs []string
		for _, v := range s.Enum {
			vs = append(vs, fmt.Sprint(v))
		}
		typ = strings.Join(vs, "|")
	}
	if doc == "" {
		return "(" + typ + ")"
	}
	return doc + " (" + typ + ")"
}

// reservedFlags are the flags of every operation command; a request field of the same name
// is given with --data.
var reservedFlags = map[string]bool{"data": true, "output": true, "url": true, "token": true, "watch": true}

// callOperation runs glow <artifact> <op> [flags].
func callOperation(op *gen.Operation, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := "glow " + strings.ReplaceAll(strings.TrimPrefix(op.Path, "/"), "/", " ")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	contract, err := dispatch.NewContract(glowspec.Spec)
	if err != nil {
		fmt.Fprintf(stderr, "glow: %v\n", err)
		return exitUnreachable
	}
	fields, docs := scalarFields(contract, op)
	for _, f := range fields {
		if !reservedFlags[f.name] { // such a field is given with --data
			fs.Var(f, f.name, docs[f.name])
		}
	}
	data := fs.String("data", "", "the whole request body: JSON, @file.json, or - for stdin; flags set fields over it")
	output := fs.String("output", "", "json, or table (the default for searches: their first list, one row per item)")
	url := fs.String("url", "", "the server (GLOW_URL; default: glow login's, else http://127.0.0.1:8080)")
	token := fs.String("token", "", "the bearer token (GLOW_TOKEN; default: glow login's)")
	watch := new(bool)
	if startsRun(contract, op) {
		watch = fs.Bool("watch", false, "follow the run the call starts until it ends: its text as it streams, its progress on stderr")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n\n%s: POST %s, the socket.io event %s.\n\nFlags:\n", name, op.Summary, op.Path, op.ID)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s takes flags only; got %q\n", name, fs.Args())
		return 2
	}
	body, err := requestBody(*data, stdin, fields)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	cfg := loadConfig()
	base := firstOf(*url, os.Getenv("GLOW_URL"), cfg.URL, "http://127.0.0.1:8080")
	bearer := firstOf(*token, os.Getenv("GLOW_TOKEN"), cfg.Token)
	status, answer, err := post(base, bearer, op.Path, body)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return exitUnreachable
	}
	if *watch && status < 300 {
		run := runOf(answer)
		if run == "" {
			fmt.Fprintf(stderr, "%s: the answer names no run: %s\n", name, answer)
			return exitServerError
		}
		return watchRun(base, bearer, run, stdout, stderr)
	}
	format := *output
	if format == "" && op.Name == "search" && status < 300 {
		format = "table"
	}
	switch {
	case format == "table" && status < 300:
		if err := printTable(stdout, answer); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return exitUnreachable
		}
	case format == "table", format == "json", format == "":
		var pretty bytes.Buffer
		if json.Indent(&pretty, answer, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(answer)
		}
		fmt.Fprintln(stdout, pretty.String())
	default:
		fmt.Fprintf(stderr, "%s: --output is json or table, not %q\n", name, format)
		return 2
	}
	switch {
	case status >= 500:
		return exitServerError
	case status >= 400:
		return exitClientError
	}
	return exitOK
}

// requestBody is --data (JSON, @file or -) with the flags' fields set over it.
func requestBody(data string, stdin io.Reader, fields []*field) ([]byte, error) {
	raw := []byte("{}")
	switch {
	case data == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxBody))
		if err != nil {
			return nil, err
		}
		raw = b
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, err
		}
		raw = b
	case data != "":
		raw = []byte(data)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, fmt.Errorf("--data is not a JSON object: %v", err)
	}
	if body == nil {
		body = map[string]json.RawMessage{}
	}
	for _, f := range fields {
		if !f.set {
			continue
		}
		v, err := f.json()
		if err != nil {
			return nil, err
		}
		body[f.name] = v
	}
	return json.Marshal(body)
}

// maxBody bounds a body read from stdin.
const maxBody = 64 << 20

// post calls an operation over HTTP.
func post(base, token, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	return res.StatusCode, answer, err
}

// printTable prints the answer's first list of objects as a table: a column per scalar field
// of its items (ids, names, counts…), in the order of the first item's keys, sorted.
func printTable(w io.Writer, answer []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(answer, &top); err != nil {
		return err
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var items []map[string]any
		if json.Unmarshal(top[k], &items) != nil || len(items) == 0 {
			continue
		}
		var cols []string
		for c, v := range items[0] {
			switch v.(type) {
			case string, float64, bool:
				cols = append(cols, c)
			}
		}
		sort.Strings(cols)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
		for _, item := range items {
			row := make([]string, len(cols))
			for i, c := range cols {
				if v, ok := item[c]; ok && v != nil {
					row[i] = fmt.Sprint(v)
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if total, ok := top["total_count"]; ok {
			fmt.Fprintf(w, "%d of %s\n", len(items), total)
		}
		return nil
	}
	fmt.Fprintln(w, "(none)")
	return nil
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
