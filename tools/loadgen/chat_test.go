package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/events"
)

func TestParseWatchSpecs(t *testing.T) {
	got, err := parseWatchSpecs(" 1,10 ,500,100@20ms,2@0s")
	if err != nil {
		t.Fatal(err)
	}
	want := []watchSpec{{1, 0}, {10, 0}, {500, 0}, {100, 20 * time.Millisecond}, {2, 0}}
	if !slices.Equal(got, want) {
		t.Fatalf("parseWatchSpecs = %v, want %v", got, want)
	}
	if s := (watchSpec{100, 20 * time.Millisecond}).label(); s != "100@20ms" {
		t.Fatalf("label = %q", s)
	}
	for _, bad := range []string{"", "0", "1001", "x", "10@", "10@1.5ms", "10@-1ms", "10@3s", "10@20", "1,,2"} {
		if got, err := parseWatchSpecs(bad); err == nil {
			t.Errorf("parseWatchSpecs(%q) = %v, want an error", bad, got)
		}
	}
}

// frame is what a socket receives for an event: its arguments, as the server encodes them.
func frame(name string, ev events.Event) []byte {
	b, _ := json.Marshal([]any{name, ev.Payload()})
	return b
}

func TestParseFrame(t *testing.T) {
	delta := frame(deltaEvent, events.Event{Topic: "attempt/0190a0c4-7ad2-7000-8000-000000000001", Seq: 1234,
		Data: json.RawMessage(`{"delta":" \"seq\":9","run_id":"r1"}`)})
	name, topic, seq, ok := parseFrame(delta)
	if !ok || string(name) != deltaEvent || string(topic) != "attempt/0190a0c4-7ad2-7000-8000-000000000001" || seq != 1234 {
		t.Fatalf("parseFrame(%s) = %q %q %d %v", delta, name, topic, seq, ok)
	}
	// A message has a seq of its own, after the event's.
	msg := frame("attempt.chat.message", events.Event{Topic: "attempt/x", Seq: 7, Data: json.RawMessage(`{"message":{"seq":99}}`)})
	if _, topic, seq, ok := parseFrame(msg); !ok || string(topic) != "attempt/x" || seq != 7 {
		t.Fatalf("parseFrame(%s) = %q %d %v", msg, topic, seq, ok)
	}
	// Events without a topic and a number first: the name only.
	for _, in := range []string{`["replay_done",{"topic":"attempt/x","since":0,"last_seq":4}]`, `["x"]`, `["x",{"seq":1}]`,
		`["x",{"topic":"a","seq":}]`, `["x",{"topic":"a"}]`, `["x",{"topic":"a","seq":1234567890123456789012}]`} {
		name, topic, seq, ok := parseFrame([]byte(in))
		if !ok || len(name) == 0 || topic != nil || seq != -1 {
			t.Errorf("parseFrame(%s) = %q %q %d %v, want the name alone", in, name, topic, seq, ok)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":1}`, `["unterminated`, `[1,2]`} {
		if name, _, _, ok := parseFrame([]byte(bad)); ok {
			t.Errorf("parseFrame(%s) = %q, want not ok", bad, name)
		}
	}
}

func TestWatcherAccounting(t *testing.T) {
	const topic = "attempt/a"
	base := time.Unix(1_800_000_000, 0)
	win := &window{}
	w := newWatcher(topic, win, 3)
	push := func(name string, seq int64, at time.Duration) {
		w.push(frame(name, events.Event{Topic: topic, Seq: seq, Data: json.RawMessage(`{}`)}), base.Add(at))
	}
	// Before the window is set nothing is in it.
	push(deltaEvent, 1, 0)
	win.set(base.Add(10*time.Second), base.Add(20*time.Second))
	push(deltaEvent, 2, 5*time.Second)                   // before the window
	push("attempt.generate.progress", 3, 10*time.Second) // in it, not a delta
	push(deltaEvent, 4, 10*time.Second)                  // sampled
	push(deltaEvent, 7, 11*time.Second)                  // 5 and 6 lost
	push(deltaEvent, 6, 12*time.Second)                  // out of order (still delivered: the third sample)
	push(deltaEvent, 7, 13*time.Second)                  // repeated, beyond the sample limit
	push(deltaEvent, 8, 14*time.Second)
	push(deltaEvent, 9, 15*time.Second)
	push(deltaEvent, 10, 20*time.Second)                                                           // after the window
	push(deltaEvent, 11, 21*time.Second)                                                           // after the window
	w.push(frame(deltaEvent, events.Event{Topic: "attempt/b", Seq: 12}), base.Add(15*time.Second)) // another topic
	w.push([]byte(`["profile.context.started",{"topic":"profile/p","seq":1}]`), base.Add(15*time.Second))

	if w.last.Load() != 11 || w.lost != 2 || w.disorder != 2 {
		t.Fatalf("last %d lost %d disorder %d, want 11, 2, 2", w.last.Load(), w.lost, w.disorder)
	}
	if w.deltas != 6 || w.total != 10 || w.dropped != 3 || len(w.samples) != 3 {
		t.Fatalf("deltas %d total %d dropped %d samples %d, want 6, 10, 3, 3", w.deltas, w.total, w.dropped, len(w.samples))
	}
	if w.samples[0] != (frameSample{4, base.Add(10 * time.Second).UnixNano()}) || w.samples[2].seq != 6 {
		t.Fatalf("samples %v", w.samples)
	}
	if w.lastAt.Load() != base.Add(21*time.Second).UnixNano() {
		t.Fatal("lastAt is not the latest event of the topic")
	}

	// replay_done moves the numbering on to where live delivery starts.
	w2 := newWatcher(topic, win, 10)
	w2.push([]byte(`["replay_done",{"topic":"attempt/a","since":0,"last_seq":40,"replayed":0,"truncated":false}]`), base)
	w2.push([]byte(`["replay_done",{"topic":"attempt/other","since":0,"last_seq":90,"replayed":0,"truncated":false}]`), base)
	push2 := func(seq int64) {
		w2.push(frame(deltaEvent, events.Event{Topic: topic, Seq: seq}), base.Add(11*time.Second))
	}
	push2(41)
	push2(42)
	if w2.last.Load() != 42 || w2.lost != 0 || w2.disorder != 0 || w2.deltas != 2 {
		t.Fatalf("after replay_done: last %d lost %d disorder %d deltas %d", w2.last.Load(), w2.lost, w2.disorder, w2.deltas)
	}
}

func TestLatencies(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	a := &watcher{samples: []frameSample{{1, ms(10)}, {2, ms(20)}, {3, ms(30)}}}
	b := &watcher{samples: []frameSample{{1, ms(12)}, {2, ms(19)}, {9, ms(40)}}} // 9 is past the last number
	pub := &publishTimes{at: []int64{0, ms(5), 0, ms(25)}, deltas: []bool{false, true, true, true}}
	lat, spread := latencies([]*watcher{a, b}, pub, 3)
	// Seq 2 has no publish time: no latency, but a spread.
	if fmt.Sprint(lat) != "[5ms 5ms 7ms]" {
		t.Fatalf("latencies = %v", lat)
	}
	if fmt.Sprint(spread) != "[0s 1ms 0s 2ms 0s]" {
		t.Fatalf("spread = %v", spread)
	}
	if lat, spread := latencies([]*watcher{a}, nil, 3); lat != nil || len(spread) != 3 {
		t.Fatalf("without publish times: %v %v", lat, spread)
	}
	if n := pub.deltasIn(ms(5), ms(25)); n != 1 {
		t.Fatalf("deltasIn = %d, want 1 (seq 1 only: seq 2 has no time, seq 3 is at the end)", n)
	}
}

func TestRunEndOf(t *testing.T) {
	at := time.Now()
	done := frame(completedEvent, events.Event{Topic: "attempt/a", Seq: 5, Data: json.RawMessage(`{"result":{"message":{"run_id":"no"}},"run_id":"r1","text":"hi"}`)})
	if e, ok := runEndOf(done, at); !ok || e.runID != "r1" || e.failed || !e.at.Equal(at) {
		t.Fatalf("runEndOf(completed) = %+v, %v", e, ok)
	}
	failed := frame(failedEvent, events.Event{Topic: "attempt/a", Seq: 6, Data: json.RawMessage(`{"error":"x","run_id":"r2"}`)})
	if e, ok := runEndOf(failed, at); !ok || e.runID != "r2" || !e.failed {
		t.Fatalf("runEndOf(failed) = %+v, %v", e, ok)
	}
	if _, ok := runEndOf(frame(deltaEvent, events.Event{Topic: "attempt/a", Seq: 1, Data: json.RawMessage(`{"run_id":"r1"}`)}), at); ok {
		t.Fatal("runEndOf accepted a delta")
	}
}

// TestChatStep runs a short chat fan-out step against a server started as the load
// generator starts it (in process).
func TestChatStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	tgt, err := startInProcess(t.TempDir(), serverConfig{Clients: 1, Role: "learner", MaxCalls: 16, LogLevel: "error",
		Watchers: 3, TokenDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := tgt.stop(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	env, err := setupChat(ctx, tgt, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runChatStep(ctx, tgt, env, chatStepConfig{watchSpec: watchSpec{Watchers: 3, Pace: time.Millisecond},
		Warmup: 200 * time.Millisecond, Duration: time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Errors != 0 || res.Replies == 0 || res.Published == 0 || !res.PublishedLog || !res.LatKnown {
		t.Fatalf("errors %d, replies %d, published %d (from the log: %v), latency known: %v",
			res.Errors, res.Replies, res.Published, res.PublishedLog, res.LatKnown)
	}
	if res.Lost != 0 || res.Disorder != 0 || !res.Drained {
		t.Fatalf("lost %d, disorder %d, drained %v", res.Lost, res.Disorder, res.Drained)
	}
	// Every watcher gets every delta: about 3 × the published ones land in the window.
	if res.Delivered < 2*res.Published || res.Delivered > 4*res.Published {
		t.Fatalf("delivered %d for %d published to 3 watchers", res.Delivered, res.Published)
	}
	if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max || res.Samples != int(res.Delivered) {
		t.Fatalf("latency p50 %s p99 %s max %s, %d samples for %d delivered", res.P50, res.P99, res.Max, res.Samples, res.Delivered)
	}
	if res.AllReplies < res.Replies || res.AllDeltas < res.AllReplies {
		t.Fatalf("%d replies with %d deltas in all", res.AllReplies, res.AllDeltas)
	}
}
