package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/llm"
)

func collect(t *testing.T, g llm.Generator, req llm.Request) (string, []string, llm.Usage, error) {
	t.Helper()
	var deltas []string
	usage, err := g.Stream(context.Background(), req, func(d string) error {
		deltas = append(deltas, d)
		return nil
	})
	return strings.Join(deltas, ""), deltas, usage, err
}

func chat(character llm.Character, turns ...string) llm.Request {
	req := llm.Request{Messages: []llm.Message{{Role: llm.System, Content: llm.CharacterPrompt(character)}}}
	for i, t := range turns {
		role := llm.User
		if i%2 == 1 {
			role = llm.Assistant
		}
		req.Messages = append(req.Messages, llm.Message{Role: role, Content: t})
	}
	return req
}

func TestLocalComposesFromPersonaAndConversation(t *testing.T) {
	sue := llm.Character{Name: "Sue", About: "a tough buyer at a hardware chain", Behaviour: "Push back on price."}
	sam := llm.Character{Name: "Sam", About: "a friendly shop owner", Behaviour: "Be curious."}
	g := llm.Local{}

	first, deltas, usage, err := collect(t, g, chat(sue, "Our pricing is flexible for large orders."))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Sue", "a tough buyer", "Our pricing is flexible", "pricing"} {
		if !strings.Contains(first, want) {
			t.Errorf("reply %q does not use %q", first, want)
		}
	}
	if len(deltas) < 10 || usage.CompletionTokens != len(deltas) || usage.PromptTokens == 0 {
		t.Errorf("streamed %d deltas, usage %+v", len(deltas), usage)
	}
	again, _, _, _ := collect(t, g, chat(sue, "Our pricing is flexible for large orders."))
	if again != first {
		t.Errorf("not deterministic:\n%q\n%q", first, again)
	}
	other, _, _, _ := collect(t, g, chat(sam, "Our pricing is flexible for large orders."))
	if other == first || !strings.Contains(other, "Sam") {
		t.Errorf("another persona gave %q", other)
	}
	later, _, _, _ := collect(t, g, chat(sue, "Our pricing is flexible for large orders.", first, "We deliver within a week, guaranteed."))
	if later == first || strings.Contains(later, "Hello, I'm") || !strings.Contains(later, "deliver") {
		t.Errorf("second turn gave %q", later)
	}
}

func TestLocalDraftsPersonas(t *testing.T) {
	req := llm.Request{Messages: []llm.Message{
		{Role: llm.System, Content: llm.TaskPrompt(llm.TaskRecord, [2]string{"Artifact", "Persona"}, [2]string{"Fields", "name, description, instructions"})},
		{Role: llm.User, Content: "A procurement manager who negotiates hard on delivery times"},
	}}
	text, _, _, err := collect(t, llm.Local{}, req)
	if err != nil {
		t.Fatal(err)
	}
	var persona map[string]string
	if err := json.Unmarshal([]byte(text), &persona); err != nil || !strings.Contains(persona["description"], "procurement") ||
		!strings.HasPrefix(persona["instructions"], "Stay in character as ") || persona["name"] == "" {
		t.Fatalf("draft: %q %v", text, err)
	}
}

func TestLocalDraftsRecords(t *testing.T) {
	req := llm.Request{Messages: []llm.Message{
		{Role: llm.System, Content: llm.TaskPrompt(llm.TaskRecord, [2]string{"Artifact", "Agent"}, [2]string{"Fields", "name, description"})},
		{Role: llm.User, Content: "An agent that coaches negotiations with suppliers"},
	}}
	text, _, _, err := collect(t, llm.Local{}, req)
	if err != nil {
		t.Fatal(err)
	}
	var record map[string]string
	if err := json.Unmarshal([]byte(text), &record); err != nil || !strings.HasPrefix(record["name"], "Agent for ") ||
		!strings.Contains(record["description"], "negotiations") {
		t.Fatalf("draft: %q (%v)", text, err)
	}
}

func TestLocalPaceAndCancel(t *testing.T) {
	g := llm.Local{Delay: 20 * time.Millisecond}
	req := chat(llm.Character{Name: "Sue"}, "Tell me about delivery schedules for next quarter please.")
	start := time.Now()
	_, deltas, _, err := collect(t, g, req)
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < time.Duration(len(deltas))*20*time.Millisecond {
		t.Errorf("%d deltas in %s: not paced", len(deltas), elapsed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n := 0
	_, err = g.Stream(ctx, req, func(string) error { n++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || n == 0 || n >= len(deltas) {
		t.Errorf("cancelled stream: %v after %d of %d deltas", err, n, len(deltas))
	}
	stop := errors.New("stop")
	if _, err := g.Stream(context.Background(), req, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("emit error: %v", err)
	}
}

// fakeOpenAI serves /v1/chat/completions as a streaming server would, scripted per test.
func fakeOpenAI(t *testing.T, script func(ctx context.Context, w http.ResponseWriter, flush func())) (string, *[]map[string]any) {
	t.Helper()
	var bodies []map[string]any
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, `{"error":{"message":"bad path or key"}}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		bodies = append(bodies, body)
		w.Header().Set("Content-Type", "text/event-stream")
		script(r.Context(), w, func() { w.(http.Flusher).Flush() })
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/v1", &bodies
}

func chunk(content, finish string) string {
	choice := map[string]any{"index": 0, "delta": map[string]any{"content": content}}
	if finish != "" {
		choice["finish_reason"] = finish
	}
	b, _ := json.Marshal(map[string]any{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []any{choice}})
	return "data: " + string(b) + "\n\n"
}

const usageChunk = `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14}}` + "\n\n"

func TestOpenAIStreams(t *testing.T) {
	url, bodies := fakeOpenAI(t, func(ctx context.Context, w http.ResponseWriter, flush func()) {
		for _, part := range []string{"Hel", "lo", " there"} {
			fmt.Fprint(w, chunk(part, ""))
			flush()
		}
		fmt.Fprint(w, chunk("", "stop"))
		fmt.Fprint(w, usageChunk)
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
	g := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: url, APIKey: "sk-test"})
	text, deltas, usage, err := collect(t, g, llm.Request{Model: "gpt-test", MaxTokens: 50, Messages: []llm.Message{
		{Role: llm.System, Content: "be brief"}, {Role: llm.User, Content: "hi"}, {Role: llm.Assistant, Content: "yo"}, {Role: llm.User, Content: "again"}}})
	if err != nil || text != "Hello there" || len(deltas) != 3 || usage.PromptTokens != 11 || usage.CompletionTokens != 3 {
		t.Fatalf("got %q %v %+v %v", text, deltas, usage, err)
	}
	body := (*bodies)[0]
	msgs, _ := body["messages"].([]any)
	if body["model"] != "gpt-test" || body["stream"] != true || len(msgs) != 4 || body["max_completion_tokens"] != float64(50) {
		t.Fatalf("request: %v", body)
	}
	if role := msgs[2].(map[string]any)["role"]; role != "assistant" {
		t.Fatalf("third message role %v", role)
	}
}

func TestOpenAIMidStreamError(t *testing.T) {
	url, _ := fakeOpenAI(t, func(ctx context.Context, w http.ResponseWriter, flush func()) {
		fmt.Fprint(w, chunk("Partial", ""))
		flush()
		fmt.Fprint(w, `data: {"error":{"message":"the model overloaded","type":"server_error"}}`+"\n\n")
	})
	text, _, _, err := collect(t, llm.NewOpenAI(llm.OpenAIConfig{BaseURL: url, APIKey: "sk-test"}), llm.Request{Model: "m"})
	if err == nil || err.Error() != "model server reported an error mid-stream: the model overloaded" || text != "Partial" {
		t.Fatalf("mid-stream error: %q, %v", text, err)
	}
}

func TestOpenAITruncatedStream(t *testing.T) {
	url, _ := fakeOpenAI(t, func(ctx context.Context, w http.ResponseWriter, flush func()) {
		fmt.Fprint(w, chunk("Cut", ""))
		flush()
		// The connection ends without a finish reason or [DONE].
	})
	_, _, _, err := collect(t, llm.NewOpenAI(llm.OpenAIConfig{BaseURL: url, APIKey: "sk-test"}), llm.Request{Model: "m"})
	if !errors.Is(err, llm.ErrIncomplete) {
		t.Fatalf("truncated stream: %v", err)
	}
}

func TestOpenAISlowStreamIsCancellable(t *testing.T) {
	url, _ := fakeOpenAI(t, func(ctx context.Context, w http.ResponseWriter, flush func()) {
		for ctx.Err() == nil {
			fmt.Fprint(w, chunk("tick ", ""))
			flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	n := 0
	start := time.Now()
	_, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: url, APIKey: "sk-test"}).Stream(ctx, llm.Request{Model: "m"}, func(string) error { n++; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || n == 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("slow stream: %v after %d deltas and %s", err, n, time.Since(start))
	}
}

func TestOpenAIHTTPError(t *testing.T) {
	url, _ := fakeOpenAI(t, nil)
	_, _, _, err := collect(t, llm.NewOpenAI(llm.OpenAIConfig{BaseURL: url, APIKey: "wrong"}), llm.Request{Model: "m"})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad key: %v", err)
	}
}
