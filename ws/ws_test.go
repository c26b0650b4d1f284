package ws_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

func TestHandshakeRefusesBadTokens(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	for name, token := range map[string]string{"no token": "", "unknown token": "glow_nope", "not a glow token": "abc"} {
		if _, err := env.DialErr(t, token); err == nil || err.Error() != "unauthorized" {
			t.Errorf("%s: connect error = %v, want unauthorized", name, err)
		}
	}
}

func TestUnknownEventIsAnswered404AtOnce(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	c := env.Dial(t, env.Admin)
	start := time.Now()
	status, body, err := c.CallErr("persona.nope", map[string]any{}, time.Second)
	if err != nil {
		t.Fatalf("unknown event: %v", err)
	}
	if status != http.StatusNotFound || time.Since(start) > time.Second {
		t.Fatalf("unknown event: status %d after %s: %s", status, time.Since(start), body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["status"] != float64(404) || p["title"] != "Not Found" {
		t.Fatalf("unknown event body is not a 404 problem: %s", body)
	}
}
