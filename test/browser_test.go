package test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// chromiumRequire finds the browser (GLOW_CHROMIUM, or chromium on PATH) and playwright-core,
// or skips the test — unless GLOW_TEST_REQUIRE_BROWSER=1, as in CI.
func chromiumRequire(t *testing.T) string {
	t.Helper()
	path := os.Getenv("GLOW_CHROMIUM")
	var missing error
	if path == "" {
		path, missing = exec.LookPath("chromium")
	}
	if missing == nil {
		if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "playwright-core", "package.json")); err != nil {
			missing = errors.New("test/node/node_modules has no playwright-core: run `npm ci --prefix test/node`")
		}
	}
	if missing != nil {
		if os.Getenv("GLOW_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatalf("GLOW_TEST_REQUIRE_BROWSER=1 but %v", missing)
		}
		t.Skipf("skipping the browser test: %v (GLOW_TEST_REQUIRE_BROWSER=1 makes this a failure)", missing)
	}
	return path
}

// crossOriginPage serves, on an origin of its own, a page that loads the official
// socket.io-client's browser bundle.
func crossOriginPage(t *testing.T) *httptest.Server {
	t.Helper()
	bundle := filepath.Join(nodeDir, "node_modules", "socket.io-client", "dist", "socket.io.min.js")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>glow from another origin</title><script src="/socket.io.min.js"></script>`))
	})
	mux.HandleFunc("GET /socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, bundle)
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	return page
}

// TestBrowserOnAnotherOrigin: in headless Chromium, a page of an origin GLOW_CORS_ORIGINS
// lists calls an operation over HTTP with its token (and reads glow's exposed headers),
// connects with the default socket.io-client — long-polling, then the upgrade to websocket —
// streams a chat reply whose deltas make the stored message, and follows the chat's topic
// over server-sent events with a stream ticket: its replay is the same reply.
func TestBrowserOnAnotherOrigin(t *testing.T) {
	chromium := chromiumRequire(t)
	node := nodeRequire(t)
	page := crossOriginPage(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{CORSOrigins: page.URL})
	department := env.Department(t, "browsers").String()
	learner := env.Token(t, "browser-learner", "learner", "browsers")
	res := realtimeRun(t, node, "browser.mjs", map[string]string{
		"GLOW_URL":           env.URL,
		"GLOW_PAGE_URL":      page.URL + "/",
		"GLOW_ADMIN_TOKEN":   env.Admin,
		"GLOW_TOKEN":         learner,
		"GLOW_DEPARTMENT_ID": department,
		"GLOW_CHROMIUM":      chromium,
	}, nil)
	res.requireAllPassed(t, "page/is-another-origin", "http/status", "http/exposed-header", "socketio/first-transport",
		"socketio/upgraded-to", "socketio/attempt.start", "socketio/chat_message", "chat/many-deltas",
		"chat/deltas-make-completed-text", "chat/deltas-make-stored-reply", "sse/ticket", "sse/replay-is-the-reply",
		"page/no-errors")
}

// TestBrowserRendersTheReference: /docs renders in headless Chromium with the network
// blocked (the renderer is in the binary; the page is screenshot), and shows, for an operation, its HTTP
// route, its socket.io event and the events it and its run push.
func TestBrowserRendersTheReference(t *testing.T) {
	chromium := chromiumRequire(t)
	node := nodeRequire(t)
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	shot := filepath.Join(t.TempDir(), "docs.png")
	res := realtimeRun(t, node, "docs.mjs", map[string]string{"GLOW_URL": env.URL, "GLOW_CHROMIUM": chromium, "GLOW_SCREENSHOT": shot}, nil)
	res.requireAllPassed(t, "docs/status", "docs/shows/POST /persona/create", "docs/shows/persona.create",
		"docs/shows/persona.create.completed", "docs/shows/persona.generate.text.progress", "docs/offline", "docs/no-errors",
		"docs/screenshot")
	if info, err := os.Stat(shot); err != nil || info.Size() == 0 {
		t.Errorf("no screenshot of /docs: %v", err)
	}
}
