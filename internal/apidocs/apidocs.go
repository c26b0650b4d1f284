// Package apidocs serves glow's API reference at /docs: Redoc (the standalone bundle of the
// npm package, embedded in the binary, so the page works offline) rendering a copy of
// openapi.yaml in which every operation also says how it is called over socket.io and
// which events it pushes, with examples over curl and socket.io. Everything it adds is
// derived from the spec (paths, operationIds, x-glow-events, response schemas).
// scripts/update-docs-renderer.sh replaces the bundle.
package apidocs

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// RedocVersion is the version of the embedded renderer.
const RedocVersion = "2.5.4"

//go:embed assets/redoc.standalone.js assets/redoc.LICENSE
var assets embed.FS

const page = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>glow API reference</title>
</head>
<body>
<redoc spec-url="/docs/openapi.json"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`

// contentPolicy keeps the page to glow's own origin: the renderer's styles are inline, its
// search runs in a worker made from a blob, and the only thing it would fetch from
// elsewhere, its "API docs by Redocly" logo, is not fetched.
const contentPolicy = "default-src 'self'; script-src 'self' blob:; worker-src 'self' blob:; " +
	"style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:"

// Mount serves the reference of spec (openapi.yaml as JSON) on mux: GET /docs, the page;
// /docs/openapi.json, the spec it renders; /docs/redoc.standalone.js and its license.
func Mount(mux *http.ServeMux, spec []byte) error {
	annotated, err := Annotate(spec)
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /docs", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", contentPolicy)
		_, _ = w.Write([]byte(page))
	})
	mux.HandleFunc("GET /docs/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(annotated)
	})
	for name, typ := range map[string]string{"redoc.standalone.js": "text/javascript; charset=utf-8", "redoc.LICENSE": "text/plain; charset=utf-8"} {
		body, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return fmt.Errorf("apidocs: %w", err)
		}
		mux.HandleFunc("GET /docs/"+name, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", typ)
			w.Header().Set("Cache-Control", "public, max-age=86400")
			_, _ = w.Write(body)
		})
	}
	return nil
}

// event is an entry of x-glow-events.
type event struct {
	Name  string `json:"name"`
	Topic string `json:"topic"`
}

// Annotate returns spec (JSON) with every operation's description followed by how it is
// called over HTTP and socket.io and which events it pushes (those of a run too, for an
// operation marked x-glow-run), and with x-codeSamples (which Redoc shows beside it).
func Annotate(spec []byte) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("apidocs: read the spec: %w", err)
	}
	var events []event
	if raw, err := json.Marshal(doc["x-glow-events"]); err == nil {
		_ = json.Unmarshal(raw, &events)
	}
	const call, run = "<operation>.", "<artifact>."
	var lifecycle, runEvents []event
	for _, e := range events {
		switch {
		case strings.HasPrefix(e.Name, call):
			lifecycle = append(lifecycle, e)
		case strings.HasPrefix(e.Name, run):
			runEvents = append(runEvents, e)
		}
	}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		methods, _ := item.(map[string]any)
		for method, v := range methods {
			op, ok := v.(map[string]any)
			if !ok {
				continue
			}
			id, _ := op["operationId"].(string)
			artifact := strings.SplitN(strings.TrimPrefix(path, "/"), "/", 2)[0]
			var more string
			if method == "post" {
				more = fmt.Sprintf("**HTTP** `POST %s` · **socket.io** the event `%s`, whose one argument is the request body "+
					"and whose ack is `{status, body}`, what HTTP answers.\n\n**Pushes**, to the caller's sockets: %s.",
					path, id, names(lifecycle, id, call))
				if starts, _ := op["x-glow-run"].(bool); starts {
					more += "\n\nThen the events of the run it started: " + names(runEvents, artifact, run) + "."
				}
				op["x-codeSamples"] = []map[string]string{
					{"lang": "Shell", "label": "curl", "source": fmt.Sprintf(
						"curl -X POST http://127.0.0.1:8080%s \\\n  -H \"Authorization: Bearer $TOKEN\" \\\n  -H \"Content-Type: application/json\" -d '{}'", path)},
					{"lang": "JavaScript", "label": "socket.io", "source": fmt.Sprintf(
						"const { status, body } = await socket.emitWithAck(%q, {});", id)},
				}
			} else {
				more = fmt.Sprintf("**HTTP** `%s %s`, server-sent events (no socket.io event: sockets follow topics with `system.subscribe`).",
					strings.ToUpper(method), path)
			}
			desc, _ := op["description"].(string)
			op["description"] = strings.TrimRight(desc, "\n") + "\n\n" + more + "\n"
		}
	}
	return json.Marshal(doc)
}

// names lists the events of a family for one operation (or artifact): their names with the
// placeholder prefix replaced, in the spec's order, and their topic.
func names(family []event, name, placeholder string) string {
	var out []string
	for _, e := range family {
		out = append(out, "`"+name+"."+strings.TrimPrefix(e.Name, placeholder)+"`")
	}
	if len(family) > 0 && family[0].Topic != "" {
		return strings.Join(out, ", ") + " (on `" + family[0].Topic + "`)"
	}
	return strings.Join(out, ", ")
}
