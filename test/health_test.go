package test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// TestHealthAndReadiness: /healthz answers while the process serves, /readyz while the
// database answers too; neither takes a token. A database that stops answering turns
// /readyz to 503 and leaves /healthz at 200.
func TestHealthAndReadiness(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			get := func(path string) (int, map[string]string) {
				t.Helper()
				res, err := http.Get(env.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				var body map[string]string
				if err := json.Unmarshal(b, &body); err != nil || res.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("GET %s: %q (%s): %v", path, b, res.Header.Get("Content-Type"), err)
				}
				return res.StatusCode, body
			}
			if code, body := get("/healthz"); code != 200 || body["status"] != "ok" {
				t.Fatalf("/healthz: %d %v", code, body)
			}
			if code, body := get("/readyz"); code != 200 || body["status"] != "ready" {
				t.Fatalf("/readyz: %d %v", code, body)
			}
			if err := env.Server.Store.Close(); err != nil {
				t.Fatal(err)
			}
			if code, body := get("/readyz"); code != 503 || body["status"] != "unavailable" || body["reason"] != "database" {
				t.Fatalf("/readyz with the database gone: %d %v", code, body)
			}
			if code, _ := get("/healthz"); code != 200 {
				t.Fatalf("/healthz with the database gone: %d", code)
			}
		})
	}
}
