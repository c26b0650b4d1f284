package test

// The OpenAI-compatible provider end to end: an admin adds a provider pointing at a fake
// Chat Completions server and makes its model the default; a learner's chat messages are
// then answered by that server, streamed delta by delta to the learner's socket, and stored;
// a server that fails (an error mid-stream, a stream cut short, a refused key) fails the run
// with a reason the learner can read.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

const (
	providerKey   = "sk-glow-provider-test"
	providerModel = "gpt-fake-1"
)

// TestProviderOpenAIEndToEnd: provider.create (kind openai, base_url of the fake server, an
// API key that is stored and never returned) and model.create (is_default) over HTTP as
// admin; then a learner's attempt.chat_message over socket.io starts a reply run that
// the fake server answers: the learner's socket gets attempt.generate.started, one
// attempt.generate.text.progress per delta the server streamed (in order, same text), then
// attempt.generate.completed with the server's usage, and the reply is stored as the chat's
// assistant message (attempt.chat_get, system.run_get). The fake server received the model
// name, the API key, stream: true, the persona's system prompt and the conversation (the
// second turn carries the first exchange). Then three failures, each on a new attempt: an
// error sent mid-stream, a stream that ends without a finish reason, and a 401 (the key
// changed with provider.update): each run ends "failed" with an error that says what
// happened, reported by attempt.generate.failed and system.run_get, and no reply is stored.
func TestProviderOpenAIEndToEnd(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	fake := providerStartFake(t)
	contract := env.Server.Dispatch.Contract()

	// The admin sets the provider up over HTTP.
	res := env.Post(t, env.Admin, "/provider/create", map[string]any{"providers": []any{map[string]any{
		"name": "fake openai", "kind": "openai", "base_url": fake.url + "/v1", "secrets": map[string]any{"api_key": providerKey}}}})
	providerID, _ := providerPath(t, providerDecode(t, "provider.create", res, http.StatusOK), "results.0.provider_id").(string)
	res = env.Post(t, env.Admin, "/provider/get", map[string]any{"provider_id": providerID})
	provider := providerDecode(t, "provider.get", res, http.StatusOK)["provider"].(map[string]any)
	if fmt.Sprint(provider["secret_names"]) != "[api_key]" || provider["kind"] != "openai" || provider["base_url"] != fake.url+"/v1" ||
		strings.Contains(string(res.Body), providerKey) {
		t.Fatalf("provider.get: %s", res.Body)
	}
	res = env.Post(t, env.Admin, "/model/create", map[string]any{"models": []any{map[string]any{
		"provider_ids": []string{providerID}, "name": "Fake GPT", "provider_model": providerModel, "is_default": true}}})
	modelID, _ := providerPath(t, providerDecode(t, "model.create", res, http.StatusOK), "results.0.model_id").(string)
	res = env.Post(t, env.Admin, "/model/get", map[string]any{"model_id": modelID})
	model := providerDecode(t, "model.get", res, http.StatusOK)["model"].(map[string]any)
	if model["is_default"] != true || model["provider_model"] != providerModel {
		t.Fatalf("model.get: %s", res.Body)
	}

	// A persona of the learner's department.
	learner := env.Token(t, "provider-learner", "learner", "provider-sales")
	dept := env.Department(t, "provider-sales")
	persona := llm.Character{Name: "Quinn the Buyer", About: "a procurement lead at a hardware chain",
		Behaviour: "Push back on price; ask about delivery times."}
	res = env.Post(t, env.Admin, "/persona/create", map[string]any{"personas": []any{map[string]any{
		"name": persona.Name, "description": persona.About, "instructions": persona.Behaviour,
		"department_ids": []string{dept.String()}}}})
	created := providerDecode(t, "persona.create", res, http.StatusOK)
	personaID := providerPath(t, created, "results.0.persona_id").(string)
	systemPrompt := llm.CharacterPrompt(persona)

	sock := env.Dial(t, learner)
	start := func(t *testing.T) (attemptID, chatID string) {
		t.Helper()
		status, body := sock.Call(t, "attempt.start", map[string]any{"persona_id": personaID})
		m := providerDecodeRaw(t, "attempt.start", status, body, http.StatusOK)
		return m["attempt_id"].(string), m["chat_id"].(string)
	}
	send := func(t *testing.T, chatID, text string) (runID, messageID string) {
		t.Helper()
		status, body := sock.Call(t, "attempt.chat_message", map[string]any{"chat_id": chatID, "text": text})
		m := providerDecodeRaw(t, "attempt.chat_message", status, body, http.StatusOK)
		runID, _ = m["reply_run_id"].(string)
		if runID == "" {
			t.Fatalf("attempt.chat_message: no reply_run_id: %s", body)
		}
		return runID, providerPath(t, m, "message.id").(string)
	}
	runGet := func(t *testing.T, runID string) map[string]any {
		t.Helper()
		status, body := sock.Call(t, "system.run_get", map[string]any{"run_id": runID})
		return providerDecodeRaw(t, "system.run_get", status, body, http.StatusOK)["run"].(map[string]any)
	}
	chatGet := func(t *testing.T, chatID string) []map[string]any {
		t.Helper()
		status, body := sock.Call(t, "attempt.chat_get", map[string]any{"chat_id": chatID})
		m := providerDecodeRaw(t, "attempt.chat_get", status, body, http.StatusOK)
		var out []map[string]any
		for _, v := range m["messages"].([]any) {
			out = append(out, v.(map[string]any))
		}
		return out
	}

	// First turn: the reply streams the fake server's deltas.
	attemptID, chatID := start(t)
	topic := "attempt/" + attemptID
	first := []string{"Forty euros ", "a unit? ", "That is ", "steep for ", "a first order."}
	fake.set(providerScript{deltas: first, usage: [2]int{57, 5}})
	learnerText := "Our price is forty euros per unit."
	runID, userMsgID := send(t, chatID, learnerText)
	run := providerWaitRun(t, sock, contract, runID, topic, "completed")
	if got := providerDeltas(t, sock, contract, runID, topic); strings.Join(got, "|") != strings.Join(first, "|") {
		t.Fatalf("text.progress deltas %q, want the server's %q", got, first)
	}
	reply := strings.Join(first, "")
	if run["text"] != reply || providerPath(t, run, "usage.prompt_tokens") != float64(57) ||
		providerPath(t, run, "usage.completion_tokens") != float64(5) {
		t.Fatalf("attempt.generate.completed: %v", run)
	}
	got := runGet(t, runID)
	if got["status"] != "completed" || got["output"] != reply || got["model_id"] != modelID || got["kind"] != "chat_reply" ||
		providerPath(t, got, "usage.prompt_tokens") != float64(57) || providerPath(t, got, "usage.completion_tokens") != float64(5) {
		t.Fatalf("system.run_get: %v", got)
	}
	msgs := chatGet(t, chatID)
	if len(msgs) != 2 || msgs[0]["role"] != "user" || msgs[0]["text"] != learnerText ||
		msgs[1]["role"] != "assistant" || msgs[1]["text"] != reply || msgs[1]["parent_message_id"] != userMsgID {
		t.Fatalf("attempt.chat_get messages: %v", msgs)
	}
	stored := sock.WaitEvent(t, "attempt.chat.message", func(d json.RawMessage) bool {
		return strings.Contains(string(d), `"role":"assistant"`)
	}, 5*time.Second)
	providerValidate(t, contract, "ChatMessageStored", stored.Data)

	reqs := fake.requests()
	if len(reqs) != 1 {
		t.Fatalf("the fake server got %d requests, want 1", len(reqs))
	}
	providerRequireRequest(t, reqs[0], providerKey, [][2]string{{"system", systemPrompt}, {"user", learnerText}})

	// Second turn: the conversation so far goes with it.
	second := []string{"Fine, ", "what about ", "delivery?"}
	fake.set(providerScript{deltas: second, usage: [2]int{80, 3}})
	nextText := "We can do thirty-six for five hundred units."
	runID, _ = send(t, chatID, nextText)
	providerWaitRun(t, sock, contract, runID, topic, "completed")
	if got := providerDeltas(t, sock, contract, runID, topic); strings.Join(got, "|") != strings.Join(second, "|") {
		t.Fatalf("second turn deltas %q, want %q", got, second)
	}
	if msgs := chatGet(t, chatID); len(msgs) != 4 || msgs[3]["text"] != strings.Join(second, "") {
		t.Fatalf("after the second turn: %v", msgs)
	}
	reqs = fake.requests()
	if len(reqs) != 2 {
		t.Fatalf("the fake server got %d requests, want 2", len(reqs))
	}
	providerRequireRequest(t, reqs[1], providerKey, [][2]string{
		{"system", systemPrompt}, {"user", learnerText}, {"assistant", reply}, {"user", nextText}})

	// Failures: each on a new attempt, so its chat holds the one message.
	failures := []struct {
		name    string
		script  providerScript
		key     string   // the provider's key for this run ("": unchanged)
		partial string   // the text streamed before the failure
		says    []string // what the run's error must say
	}{
		{name: "error mid-stream", script: providerScript{deltas: []string{"Let me ", "think"}, midStreamError: "the model is overloaded, try again later"},
			partial: "Let me think", says: []string{"the model is overloaded, try again later"}},
		{name: "stream ends without a finish reason", script: providerScript{deltas: []string{"Cut ", "short"}, truncate: true},
			partial: "Cut short", says: []string{llm.ErrIncomplete.Error()}},
		{name: "key refused", script: providerScript{deltas: []string{"never sent"}}, key: "sk-wrong-key",
			says: []string{"401", "Incorrect API key provided"}},
	}
	for _, f := range failures {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			if f.key != "" {
				res := env.Post(t, env.Admin, "/provider/update", map[string]any{"providers": []any{map[string]any{
					"id": providerID, "secrets": map[string]any{"api_key": f.key}}}})
				if ok := providerPath(t, providerDecode(t, "provider.update", res, http.StatusOK), "results.0.success"); ok != true {
					t.Fatalf("provider.update: %s", res.Body)
				}
			}
			before := len(fake.requests())
			fake.set(f.script)
			attemptID, chatID := start(t)
			topic := "attempt/" + attemptID
			text := "Can you do better on " + f.name + "?"
			runID, _ := send(t, chatID, text)
			failed := providerWaitRun(t, sock, contract, runID, topic, "failed")
			why, _ := failed["error"].(string)
			for _, s := range f.says {
				if !strings.Contains(why, s) {
					t.Errorf("attempt.generate.failed error %q does not say %q", why, s)
				}
			}
			if got := strings.Join(providerDeltas(t, sock, contract, runID, topic), ""); got != f.partial {
				t.Errorf("streamed %q before failing, want %q", got, f.partial)
			}
			run := runGet(t, runID)
			if run["status"] != "failed" || run["error"] != why || run["finished_at"] == nil || run["output"] != f.partial {
				t.Errorf("system.run_get: %v, want failed with error %q and the output streamed, %q", run, why, f.partial)
			}
			if msgs := chatGet(t, chatID); len(msgs) != 1 || msgs[0]["role"] != "user" {
				t.Errorf("a failed reply stored messages: %v", msgs)
			}
			reqs := fake.requests()[before:]
			if len(reqs) == 0 {
				t.Fatal("the fake server got no request")
			}
			key := providerKey
			if f.key != "" {
				key = f.key
			}
			providerRequireRequest(t, reqs[0], key, [][2]string{{"system", systemPrompt}, {"user", text}})
		})
	}
}

// providerScript is how the fake server answers the next requests.
type providerScript struct {
	deltas         []string
	usage          [2]int // prompt and completion tokens, sent in a last chunk when set
	midStreamError string // sent as an error event after the deltas
	truncate       bool   // the stream ends after the deltas, without a finish reason
}

// providerRequest is what the fake server received.
type providerRequest struct {
	path, authorization string
	body                map[string]any
}

type providerFake struct {
	url string

	mu     sync.Mutex
	script providerScript
	got    []providerRequest
}

func (f *providerFake) set(s providerScript) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = s
}

func (f *providerFake) requests() []providerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]providerRequest(nil), f.got...)
}

// providerStartFake serves POST /v1/chat/completions on 127.0.0.1 as an OpenAI-compatible
// server streaming with server-sent events: a 401 for any key but providerKey, otherwise
// the script's deltas as chat.completion.chunk events, then a finish reason, usage and
// [DONE] (or the script's failure).
func providerStartFake(t *testing.T) *providerFake {
	t.Helper()
	f := &providerFake{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.got = append(f.got, providerRequest{path: r.URL.Path, authorization: r.Header.Get("Authorization"), body: body})
		script := f.script
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"message":"no such endpoint","type":"invalid_request_error"}}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+providerKey {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		flush := w.(http.Flusher).Flush
		for _, d := range script.deltas {
			fmt.Fprint(w, providerChunk(d, ""))
			flush()
			time.Sleep(5 * time.Millisecond)
		}
		switch {
		case script.midStreamError != "":
			e, _ := json.Marshal(map[string]any{"error": map[string]any{"message": script.midStreamError, "type": "server_error"}})
			fmt.Fprintf(w, "data: %s\n\n", e)
		case script.truncate:
			// The response ends here: no finish reason, no [DONE].
		default:
			fmt.Fprint(w, providerChunk("", "stop"))
			if script.usage != [2]int{} {
				u, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
					"model": providerModel, "choices": []any{}, "usage": map[string]int{"prompt_tokens": script.usage[0],
						"completion_tokens": script.usage[1], "total_tokens": script.usage[0] + script.usage[1]}})
				fmt.Fprintf(w, "data: %s\n\n", u)
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
		}
		flush()
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

func providerChunk(content, finish string) string {
	choice := map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": content}, "finish_reason": nil}
	if finish != "" {
		choice["finish_reason"] = finish
	}
	b, _ := json.Marshal(map[string]any{"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
		"model": providerModel, "choices": []any{choice}})
	return "data: " + string(b) + "\n\n"
}

// providerRequireRequest checks a request the fake server received: the key, the model,
// streaming, and the messages (role and text) in order.
func providerRequireRequest(t *testing.T, r providerRequest, key string, messages [][2]string) {
	t.Helper()
	if r.path != "/v1/chat/completions" || r.authorization != "Bearer "+key {
		t.Errorf("request to %s with Authorization %q, want /v1/chat/completions with key %s", r.path, r.authorization, key)
	}
	if r.body["model"] != providerModel || r.body["stream"] != true {
		t.Errorf("request model %v, stream %v", r.body["model"], r.body["stream"])
	}
	raw, _ := r.body["messages"].([]any)
	var got [][2]string
	for _, m := range raw {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		got = append(got, [2]string{role, providerContent(mm["content"])})
	}
	if fmt.Sprint(got) != fmt.Sprint(messages) {
		t.Errorf("request messages:\n%q\nwant\n%q", got, messages)
	}
}

// providerContent reads a message's content: a string, or an array of text parts.
func providerContent(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, part := range c {
			if p, ok := part.(map[string]any); ok {
				s, _ := p["text"].(string)
				b.WriteString(s)
			}
		}
		return b.String()
	}
	return fmt.Sprint(v)
}

// providerWaitRun waits for the run's attempt.generate.completed or .failed on the socket,
// checks that it is the one expected and that no other end came, and returns its payload.
func providerWaitRun(t *testing.T, sock *testserver.Client, contract *dispatch.Contract, runID, topic, want string) map[string]any {
	t.Helper()
	ofRun := func(d json.RawMessage) bool { return strings.Contains(string(d), runID) }
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, ev := range sock.Events() {
			if (ev.Name != "attempt.generate.completed" && ev.Name != "attempt.generate.failed") || !ofRun(ev.Data) {
				continue
			}
			if ev.Name != "attempt.generate."+want {
				t.Fatalf("run %s ended with %s: %s", runID, ev.Name, ev.Data)
			}
			schema := map[string]string{"completed": "GenerateCompleted", "failed": "GenerateFailed"}[want]
			m := providerValidate(t, contract, schema, ev.Data)
			if m["topic"] != topic || m["run_id"] != runID {
				t.Fatalf("%s: %s", ev.Name, ev.Data)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: no attempt.generate.%s within 15s", runID, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// providerDeltas returns the run's attempt.generate.text.progress deltas as the socket got
// them, checking that they come after attempt.generate.started, on the attempt's topic, in
// increasing seq, each valid.
func providerDeltas(t *testing.T, sock *testserver.Client, contract *dispatch.Contract, runID, topic string) []string {
	t.Helper()
	var deltas []string
	started := false
	var last float64
	for _, ev := range sock.Events() {
		if !strings.HasPrefix(ev.Name, "attempt.generate.") || !strings.Contains(string(ev.Data), runID) {
			continue
		}
		switch ev.Name {
		case "attempt.generate.started":
			m := providerValidate(t, contract, "GenerateStarted", ev.Data)
			if started || m["kind"] != "chat_reply" || m["artifact"] != "attempt" {
				t.Fatalf("started: %s", ev.Data)
			}
			started = true
		case "attempt.generate.text.progress":
			m := providerValidate(t, contract, "GenerateTextProgress", ev.Data)
			if !started {
				t.Fatalf("text.progress before started: %s", ev.Data)
			}
			seq, _ := m["seq"].(float64)
			if m["topic"] != topic || seq <= last {
				t.Fatalf("text.progress out of order or off topic (after seq %v): %s", last, ev.Data)
			}
			last = seq
			deltas = append(deltas, m["delta"].(string))
		}
	}
	if !started {
		t.Fatalf("run %s: no attempt.generate.started", runID)
	}
	return deltas
}

func providerValidate(t *testing.T, contract *dispatch.Contract, schema string, data json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v: %s", schema, err, data)
	}
	if errs := contract.ValidateSchema(schema, m); len(errs) > 0 {
		t.Fatalf("%s does not match its schema: %v\n%s", schema, errs, data)
	}
	return m
}

func providerDecode(t *testing.T, what string, res testserver.Response, status int) map[string]any {
	t.Helper()
	return providerDecodeRaw(t, what, res.Status, res.Body, status)
}

func providerDecodeRaw(t *testing.T, what string, status int, body []byte, want int) map[string]any {
	t.Helper()
	var m map[string]any
	if status != want || json.Unmarshal(body, &m) != nil {
		t.Fatalf("%s: %d %s, want %d", what, status, body, want)
	}
	return m
}

// providerPath reads a dotted path ("results.0.persona_id") of a decoded JSON value.
func providerPath(t *testing.T, v any, path string) any {
	t.Helper()
	for _, key := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[key]
		case []any:
			var i int
			if _, err := fmt.Sscan(key, &i); err != nil || i >= len(c) {
				t.Fatalf("path %s: no element %s", path, key)
			}
			v = c[i]
		default:
			t.Fatalf("path %s: %v has no %s", path, v, key)
		}
	}
	return v
}
