package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

const (
	appOrigin   = "http://app.example"
	otherOrigin = "http://evil.example"
)

// corsRequest sends a request with an Origin, and more headers as name, value pairs.
func corsRequest(t *testing.T, method, url, origin string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// preflight is what a browser sends before a POST with a token from another origin.
func preflight(t *testing.T, url, origin string) *http.Response {
	t.Helper()
	return corsRequest(t, http.MethodOptions, url, origin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type, x-unknown")
}

// A page of a listed origin may call over HTTP and socket.io's long-polling, with its token:
// preflights are answered, answers carry the origin and credentials; a page of any other
// origin gets none of that, its preflight is refused, and so is its websocket handshake.
// Pages of glow's own origin, and clients that send no Origin, are not concerned.
func TestCORSAllowsTheListedOrigins(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{CORSOrigins: appOrigin + ", http://localhost:5173"})
	token := env.Token(t, "cross", "learner")
	call := env.URL + "/profile/context"
	polling := env.URL + "/socket.io/?EIO=4&transport=polling"

	t.Run("preflight of a listed origin", func(t *testing.T) {
		for _, url := range []string{call, polling} {
			res := preflight(t, url, appOrigin)
			want := map[string]string{
				"Access-Control-Allow-Origin":      appOrigin,
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, POST",
				"Access-Control-Allow-Headers":     "Authorization, Content-Type",
				"Access-Control-Max-Age":           "600",
			}
			if res.StatusCode != http.StatusNoContent {
				t.Errorf("%s: preflight %d, want 204", url, res.StatusCode)
			}
			for h, v := range want {
				if got := res.Header.Get(h); got != v {
					t.Errorf("%s: %s = %q, want %q", url, h, got, v)
				}
			}
		}
	})
	t.Run("preflight of another origin", func(t *testing.T) {
		res := preflight(t, call, otherOrigin)
		if res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of %s: %d, Allow-Origin %q; want 403 and none", otherOrigin, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("call of a listed origin", func(t *testing.T) {
		res := corsRequest(t, http.MethodPost, call, "http://localhost:5173", "Authorization", "Bearer "+token, "Content-Type", "application/json")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("call: %d", res.StatusCode)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:5173" {
			t.Errorf("Allow-Origin %q, want the caller's origin", got)
		}
		if got := res.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Glow-Call-Id") || !strings.Contains(got, "Retry-After") {
			t.Errorf("Expose-Headers %q, want Glow-Call-Id and Retry-After", got)
		}
		if !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("Vary %q, want Origin", res.Header.Values("Vary"))
		}
	})
	t.Run("socket.io handshake over polling of a listed origin", func(t *testing.T) {
		res := corsRequest(t, http.MethodGet, polling, appOrigin)
		if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != appOrigin {
			t.Errorf("polling handshake: %d, Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("call of another origin", func(t *testing.T) {
		res := corsRequest(t, http.MethodPost, call, otherOrigin, "Authorization", "Bearer "+token, "Content-Type", "application/json")
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("Allow-Origin %q for %s, want none", got, otherOrigin)
		}
	})
	t.Run("same origin and no origin", func(t *testing.T) {
		for _, origin := range []string{env.URL, ""} {
			res := corsRequest(t, http.MethodPost, call, origin, "Authorization", "Bearer "+token, "Content-Type", "application/json")
			if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("origin %q: %d, Allow-Origin %q; want 200 and none", origin, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
			}
		}
	})
	t.Run("websocket handshakes", func(t *testing.T) {
		u := "ws" + strings.TrimPrefix(env.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
		for origin, ok := range map[string]bool{appOrigin: true, env.URL: true, "": true, otherOrigin: false} {
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			c, res, err := websocket.DefaultDialer.Dial(u, h)
			if c != nil {
				c.Close()
			}
			switch {
			case ok && err != nil:
				t.Errorf("websocket from %q: %v, want it open", origin, err)
			case !ok && (err == nil || res == nil || res.StatusCode != http.StatusForbidden):
				t.Errorf("websocket from %q: %v, want 403", origin, err)
			}
		}
	})
}

// "*" lets a page of any origin call, without credentials; with no setting (the default)
// no page of another origin may: its preflight is refused.
func TestCORSAnyOriginAndNone(t *testing.T) {
	for _, c := range []struct {
		origins, allowOrigin, credentials string
		preflight                         int
	}{
		{"*", "*", "", http.StatusNoContent},
		{"", "", "", http.StatusForbidden},
	} {
		env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{CORSOrigins: c.origins})
		res := preflight(t, env.URL+"/profile/context", otherOrigin)
		if res.StatusCode != c.preflight || res.Header.Get("Access-Control-Allow-Origin") != c.allowOrigin ||
			res.Header.Get("Access-Control-Allow-Credentials") != c.credentials {
			t.Errorf("GLOW_CORS_ORIGINS=%q: preflight %d, Allow-Origin %q, Allow-Credentials %q; want %d, %q, %q", c.origins,
				res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Allow-Credentials"),
				c.preflight, c.allowOrigin, c.credentials)
		}
	}
}

// An origin that is not scheme://host[:port] is refused at start.
func TestCORSOriginsAreValidated(t *testing.T) {
	for _, bad := range []string{"app.example", "http://app.example/", "ftp://app.example", "http://app.example/path", "http://"} {
		o := server.Defaults()
		o.CORSOrigins = bad
		if err := o.Validate(); err == nil {
			t.Errorf("GLOW_CORS_ORIGINS=%q passed validation", bad)
		}
	}
	o := server.Defaults()
	o.CORSOrigins = "https://app.example.com, http://localhost:5173,*"
	if err := o.Validate(); err != nil {
		t.Errorf("valid origins refused: %v", err)
	}
}
