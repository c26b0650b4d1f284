package test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// Every call writes one access log line at info, over both transports: its operation,
// transport, status, duration and profile — failures included, those the dispatcher refuses
// and those refused at the transport's door.
func TestAccessLogHasALinePerCall(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	token := env.Token(t, "logged", "learner")
	res := env.Post(t, token, "/profile/context", `{}`)
	if res.Status != http.StatusOK {
		t.Fatalf("profile.context: %d", res.Status)
	}
	profile := res.JSON(t)["profile"].(map[string]any)["id"].(string)
	sock := env.Dial(t, token)

	cases := []struct {
		name      string
		call      func() int
		op        string
		transport string
		profile   string
	}{
		{"http ok", func() int { return env.Post(t, token, "/profile/context", `{}`).Status }, "profile.context", "http", profile},
		{"http invalid body", func() int { return env.Post(t, token, "/persona/get", `{"id": 7}`).Status }, "persona.get", "http", profile},
		{"http bad token", func() int { return env.Post(t, "glow_nope", "/profile/context", `{}`).Status }, "profile.context", "http", ""},
		{"http no token", func() int { return env.Post(t, "", "/profile/context", `{}`).Status }, "profile.context", "http", ""},
		{"socket.io ok", func() int { s, _ := sock.Call(t, "profile.context", map[string]any{}); return s }, "profile.context", "socketio", profile},
		{"socket.io invalid body", func() int { s, _ := sock.Call(t, "persona.get", map[string]any{"id": 7}); return s }, "persona.get", "socketio", profile},
		{"socket.io unknown event", func() int { s, _ := sock.Call(t, "persona.nope", map[string]any{}); return s }, "persona.nope", "socketio", profile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(env.Logs())
			status := c.call()
			line := regexp.MustCompile(`(?m)^.*level=INFO msg=call op=` + regexp.QuoteMeta(c.op) + ` .*$`)
			found := line.FindAllString(env.Logs()[before:], -1)
			if len(found) != 1 {
				t.Fatalf("%d access log lines for the call, want 1: %q", len(found), found)
			}
			want := []string{"transport=" + c.transport, "status=" + strconv.Itoa(status), "duration=", `profile=` + quoteEmpty(c.profile)}
			for _, w := range want {
				if !strings.Contains(found[0], " "+w) {
					t.Errorf("the line %q lacks %q", found[0], w)
				}
			}
		})
	}
}

// quoteEmpty is how slog's text handler writes a string attribute: an empty one as "".
func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
