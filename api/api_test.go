package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, body
}

func TestServesTheSpec(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	status, _, body := get(t, env.URL+"/openapi.yaml")
	if status != http.StatusOK || !bytes.Equal(body, glow.Spec) {
		t.Fatalf("/openapi.yaml: %d, %d bytes; want the embedded spec", status, len(body))
	}
	status, header, body := get(t, env.URL+"/openapi.json")
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: %d %s", status, header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("/openapi.json does not load: %v", err)
	}
	if want := len(gen.Operations) + len(gen.Streams); doc.Paths.Len() != want || doc.Components.Schemas["PersonaCreateRequest"] == nil {
		t.Fatalf("/openapi.json has %d paths, want %d", doc.Paths.Len(), want)
	}
}

// TestHumaRegistrationMatchesTheSpec compares the operations huma serves with the spec:
// same paths, methods, operationIds and body schemas.
func TestHumaRegistrationMatchesTheSpec(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	served := env.Server.API.OpenAPI()
	spec, err := openapi3.NewLoader().LoadFromData(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(served.Paths) != spec.Paths.Len() {
		t.Fatalf("huma serves %d paths, the spec has %d", len(served.Paths), spec.Paths.Len())
	}
	for path, item := range served.Paths {
		want := spec.Paths.Find(path)
		if want != nil && want.Get != nil && item.Get != nil {
			if item.Get.OperationID != want.Get.OperationID || item.Get.Responses["200"].Content["text/event-stream"] == nil {
				t.Errorf("GET %s: huma has %s, the spec %s", path, item.Get.OperationID, want.Get.OperationID)
			}
			continue
		}
		if want == nil || want.Post == nil || item.Post == nil {
			t.Errorf("huma serves POST %s, which the spec does not have", path)
			continue
		}
		got := item.Post
		if got.OperationID != want.Post.OperationID ||
			got.RequestBody.Content["application/json"].Schema.Ref != want.Post.RequestBody.Value.Content["application/json"].Schema.Ref ||
			got.Responses["200"].Content["application/json"].Schema.Ref != want.Post.Responses.Status(200).Value.Content["application/json"].Schema.Ref {
			t.Errorf("POST %s: huma has %s, the spec %s", path, got.OperationID, want.Post.OperationID)
		}
		if public := want.Post.Security != nil && len(*want.Post.Security) == 0; public != (got.Security != nil && len(got.Security) == 0) {
			t.Errorf("POST %s: public in the spec: %v, in huma: %v", path, public, !public)
		}
	}
	if served.Components.Schemas.Map()["Problem"] == nil {
		t.Fatal("huma's registry lacks the spec's schemas")
	}
}

func TestFallbackAnswersAreProblems(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/persona/nope", http.StatusNotFound},
		{http.MethodGet, "/nowhere", http.StatusNotFound},
		{http.MethodGet, "/persona/search", http.StatusMethodNotAllowed},
		{http.MethodPut, "/attempt/chat/message", http.StatusMethodNotAllowed},
	} {
		req, _ := http.NewRequest(tc.method, env.URL+tc.path, strings.NewReader(`{}`))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		_ = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != tc.status || p["status"] != float64(tc.status) || res.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s %v", tc.method, tc.path, res.StatusCode, res.Header.Get("Content-Type"), p)
		}
		if tc.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != http.MethodPost {
			t.Errorf("%s %s: Allow = %q", tc.method, tc.path, res.Header.Get("Allow"))
		}
	}
	status, _, body := get(t, env.URL+"/")
	if status != http.StatusOK || !strings.Contains(string(body), `"openapi":"/openapi.yaml"`) {
		t.Fatalf("GET /: %d %s", status, body)
	}
}

func TestBodyLimitAndBadAuthorization(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{MaxBodyBytes: 4096})
	big := `{"search":"` + strings.Repeat("x", 5000) + `"}`
	if res := env.Post(t, env.Admin, "/persona/search", big); res.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("5 kB body with a 4 kB limit: %d %s", res.Status, res.Body)
	}
	if res := env.Post(t, env.Admin, "/persona/search", `{"search":"x"}`); res.Status != http.StatusOK {
		t.Fatalf("small body: %d %s", res.Status, res.Body)
	}
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/persona/search", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("Basic credentials: %d, WWW-Authenticate %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
}

// TestCallIDMatchesLifecycleEvents: the Glow-Call-Id header names the call whose lifecycle
// events the caller's sockets receive.
func TestCallIDMatchesLifecycleEvents(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	sock := env.Dial(t, env.Admin)
	res := env.Post(t, env.Admin, "/profile/context", `{}`)
	id := res.Header.Get("Glow-Call-Id")
	if res.Status != http.StatusOK || id == "" {
		t.Fatalf("profile.context: %d, call id %q", res.Status, id)
	}
	ev := sock.WaitEvent(t, "profile.context.completed", func(data json.RawMessage) bool {
		return strings.Contains(string(data), id)
	}, 5*time.Second)
	var payload map[string]any
	_ = json.Unmarshal(ev.Data, &payload)
	if payload["transport"] != "http" || payload["status"] != float64(200) {
		t.Fatalf("completed event: %s", ev.Data)
	}
}

// TestASlowBodyIsCutOff: a request whose body trickles in is answered 408 once the body
// timeout has passed, instead of holding its connection and goroutine as long as it likes.
func TestASlowBodyIsCutOff(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], &server.Options{BodyTimeout: 300 * time.Millisecond})
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /system/health HTTP/1.1\r\nHost: glow\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickling body: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "took longer than 300ms") {
		t.Fatalf("%d %s, want 408", res.StatusCode, body)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("answered after %s", took)
	}
}
