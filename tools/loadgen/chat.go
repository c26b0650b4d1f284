package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glowhq/glow/store"
)

// The chat fan-out: one chat streamed to N watching sockets. One client (the chat's owner)
// sends chat messages back to back over socket.io: the next one as soon as the persona's
// reply to the previous one completed. Every reply is a generation run whose deltas go out
// as attempt.generate.text.progress events on the attempt's topic; N other sockets, each
// of its own level-0 profile, follow that topic with system.subscribe. The step counts the
// deltas every watcher receives, checks their numbering (every event of the topic, once,
// in order), and joins each receipt to the time the server published the event, read
// afterwards from the server's event log (events.created_at).

const transportChat = "chat-fanout"

// Event names of the chat fan-out.
const (
	deltaEvent     = "attempt.generate.text.progress"
	completedEvent = "attempt.generate.completed"
	failedEvent    = "attempt.generate.failed"
)

// maxPace is the longest pause between words a model may be given (model.update).
const maxPace = 2 * time.Second

// maxSamples bounds the latency samples a step keeps, over all its watchers.
const maxSamples = 4_000_000

// watchSpec is one chat fan-out step: how many sockets watch, and the model's pace.
type watchSpec struct {
	Watchers int
	Pace     time.Duration // pause between streamed words; 0: none
}

// label is the spec as -watchers takes it.
func (w watchSpec) label() string {
	if w.Pace == 0 {
		return strconv.Itoa(w.Watchers)
	}
	return fmt.Sprintf("%d@%s", w.Watchers, w.Pace)
}

// parseWatchSpecs reads "1,10,100,100@20ms": watcher counts, each optionally with the pause
// the model makes between words (whole milliseconds, the model's token_delay_ms).
func parseWatchSpecs(list string) ([]watchSpec, error) {
	var out []watchSpec
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		n, pace, hasPace := strings.Cut(item, "@")
		w, err := strconv.Atoi(n)
		if err != nil || w < 1 || w > maxClients {
			return nil, fmt.Errorf("%q: the number of watchers must be from 1 to %d", item, maxClients)
		}
		spec := watchSpec{Watchers: w}
		if hasPace {
			d, err := time.ParseDuration(pace)
			if err != nil || d < 0 || d > maxPace || d%time.Millisecond != 0 {
				return nil, fmt.Errorf("%q: the pace must be whole milliseconds from 0 to %s", item, maxPace)
			}
			spec.Pace = d
		}
		out = append(out, spec)
	}
	return out, nil
}

// parseFrame reads a pushed event's arguments, `["<name>",{"topic":"<topic>","seq":<n>,…}]`,
// without decoding the JSON: the server writes every payload with topic and seq first.
// seq is -1 (and topic nil) when the payload does not start that way. The slices alias args.
func parseFrame(args []byte) (name, topic []byte, seq int64, ok bool) {
	seq = -1
	if !bytes.HasPrefix(args, []byte(`["`)) {
		return nil, nil, -1, false
	}
	rest := args[2:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, nil, -1, false
	}
	name, rest = rest[:end], rest[end+1:]
	const topicKey, seqKey = `,{"topic":"`, `","seq":`
	if !bytes.HasPrefix(rest, []byte(topicKey)) {
		return name, nil, -1, true
	}
	rest = rest[len(topicKey):]
	end = bytes.IndexByte(rest, '"')
	if end < 0 || !bytes.HasPrefix(rest[end:], []byte(seqKey)) {
		return name, nil, -1, true
	}
	topic, rest = rest[:end], rest[end+len(seqKey):]
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits == 0 || digits > 18 {
		return name, nil, -1, true
	}
	seq, _ = strconv.ParseInt(string(rest[:digits]), 10, 64)
	return name, topic, seq, true
}

// window is the measured window, as wall-clock Unix nanoseconds; zero until set.
type window struct{ from, to atomic.Int64 }

func (w *window) set(from, to time.Time) {
	w.to.Store(to.UnixNano())
	w.from.Store(from.UnixNano())
}

func (w *window) contains(at int64) bool {
	from := w.from.Load()
	return from != 0 && at >= from && at < w.to.Load()
}

// frameSample is one delta a watcher received: its number in the topic, and when.
type frameSample struct {
	seq int64
	at  int64 // Unix nanoseconds, wall clock
}

// watcher counts what one socket receives of one topic. push runs on the socket's read
// goroutine; the plain fields are read once the socket is closed, the atomics at any time.
type watcher struct {
	topic []byte
	win   *window
	limit int // samples to keep at most

	last   atomic.Int64 // the highest number received of the topic
	lastAt atomic.Int64 // when the latest event of the topic arrived (Unix ns)

	deltas   int64 // deltas received in the window
	total    int64 // deltas received in all
	lost     int64 // numbers skipped: events never received
	disorder int64 // events received again or out of order
	samples  []frameSample
	dropped  int64 // deltas in the window beyond limit, counted but not sampled
}

func newWatcher(topic string, win *window, limit int) *watcher {
	return &watcher{topic: []byte(topic), win: win, limit: limit}
}

var (
	deltaName = []byte(deltaEvent)
	replayEnd = []byte("replay_done")
)

func (w *watcher) push(args []byte, at time.Time) {
	name, topic, seq, ok := parseFrame(args)
	if !ok {
		return
	}
	if bytes.Equal(name, replayEnd) {
		// The subscription's replay is over: live events follow its last number.
		var payload [2]json.RawMessage
		var r struct {
			Topic string `json:"topic"`
			Last  int64  `json:"last_seq"`
		}
		if json.Unmarshal(args, &payload) == nil && json.Unmarshal(payload[1], &r) == nil && r.Topic == string(w.topic) {
			if w.last.Load() < r.Last {
				w.last.Store(r.Last)
			}
		}
		return
	}
	if seq < 0 || !bytes.Equal(topic, w.topic) {
		return
	}
	w.account(name, seq, at.UnixNano())
}

// account counts one event of the topic.
func (w *watcher) account(name []byte, seq, at int64) {
	switch last := w.last.Load(); {
	case seq == last+1:
		w.last.Store(seq)
	case seq > last+1:
		w.lost += seq - last - 1
		w.last.Store(seq)
	default:
		w.disorder++
	}
	w.lastAt.Store(at)
	if !bytes.Equal(name, deltaName) {
		return
	}
	w.total++
	if !w.win.contains(at) {
		return
	}
	w.deltas++
	if len(w.samples) < w.limit {
		w.samples = append(w.samples, frameSample{seq: seq, at: at})
	} else {
		w.dropped++
	}
}

// chatStepConfig is one chat fan-out step.
type chatStepConfig struct {
	watchSpec
	Warmup   time.Duration
	Duration time.Duration
	Timeout  time.Duration
	Anchor   string // the anchor measured (its broadcast: runBroadcastStep); "" for glow's chat
}

// label names the step's transport, and the anchor measured if any.
func (c chatStepConfig) label() string {
	if c.Anchor == "" {
		return transportChat
	}
	return transportChat + "@" + c.Anchor
}

// chatResult is what a chat fan-out step measured over its window.
type chatResult struct {
	chatStepConfig
	Window   time.Duration
	Replies  int64 // replies completed in the window
	Errors   int64
	ErrKinds map[string]int64
	ReplyP50 time.Duration // from sending a message to its reply's completed event

	Published    int64 // deltas published in the window
	PublishedLog bool  // Published was counted in the event log (else at the owner's socket)
	Delivered    int64 // deltas received by the watchers in the window
	AllReplies   int64 // replies completed in the whole step (warm-up and drain included)
	AllDeltas    int64 // their deltas
	Lost         int64 // events a watcher never received (gaps in the numbering)
	Disorder     int64 // events received twice or out of order

	LatKnown      bool // the publish times were read from the event log
	Samples       int
	P50, P90      time.Duration // publish → receipt, over the sampled deltas
	P99, Max      time.Duration
	Spread50      time.Duration // receipt − the first watcher's receipt of the same delta
	Spread99      time.Duration
	Drain         time.Duration // after the last reply completed, until every watcher had every event
	Drained       bool
	Behind        int64 // events still missing at the drain deadline, over all watchers
	SharedWatcher bool  // the watchers shared one token (an external server without its database)

	cpuUsage
	ServerRSS int64
	Connect   time.Duration // connecting and subscribing the watchers
}

func (r chatResult) perSecond(n int64) float64 { return float64(n) / r.Window.Seconds() }

// chatEnv is what every chat fan-out step of a run shares: the persona and the model.
type chatEnv struct {
	personaID string
	modelID   string
}

// apiClient makes the setup calls over HTTP.
type apiClient struct {
	base string
	http *http.Client
}

// call posts body to path with token and decodes a 200 answer into out.
func (a apiClient) call(ctx context.Context, token, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s answered %d: %s", path, res.StatusCode, truncate(data, 300))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("POST %s: %v", path, err)
		}
	}
	return nil
}

// setupChat creates the persona and finds the default model, as the admin.
func setupChat(ctx context.Context, tgt *target, timeout time.Duration) (chatEnv, error) {
	var env chatEnv
	api := apiClient{base: tgt.URL, http: &http.Client{Timeout: timeout}}
	var created struct {
		Results []struct {
			Success   bool   `json:"success"`
			PersonaID string `json:"persona_id"`
			Message   string `json:"message"`
		} `json:"results"`
	}
	persona := map[string]any{"personas": []map[string]any{{
		"name":         "Morgan, operations lead",
		"description":  "An operations lead weighing a new onboarding plan for her team.",
		"instructions": "Curious and friendly; asks for concrete examples.",
	}}}
	if err := api.call(ctx, tgt.Admin, "/persona/create", persona, &created); err != nil {
		return env, err
	}
	if len(created.Results) != 1 || !created.Results[0].Success {
		return env, fmt.Errorf("persona.create did not create the persona: %+v", created.Results)
	}
	env.personaID = created.Results[0].PersonaID
	var models struct {
		Models []struct {
			ID string `json:"id"`
		} `json:"models"`
	}
	if err := api.call(ctx, tgt.Admin, "/model/search", map[string]any{"page_size": 200}, &models); err != nil {
		return env, err
	}
	for _, m := range models.Models { // search rows leave is_default to get
		var got struct {
			Model struct {
				IsDefault bool `json:"is_default"`
			} `json:"model"`
		}
		if err := api.call(ctx, tgt.Admin, "/model/get", map[string]any{"model_id": m.ID}, &got); err != nil {
			return env, err
		}
		if got.Model.IsDefault {
			env.modelID = m.ID
			break
		}
	}
	if env.modelID == "" {
		return env, errors.New("no model is the default")
	}
	return env, nil
}

// chatMessage is the i-th message the owner sends.
func chatMessage(chatID string, i int) []byte {
	subjects := []string{"onboarding plan", "training budget", "weekly schedule", "mentoring programme", "hiring timeline"}
	b, _ := json.Marshal(map[string]string{"chat_id": chatID,
		"text": fmt.Sprintf("Message %d: how would the %s work for a team of %d people?", i, subjects[i%len(subjects)], 5+i%20)})
	return b
}

// runEnd is a reply's end, as the owner's socket heard it.
type runEnd struct {
	runID  string
	failed bool
	at     time.Time
}

// runEndOf reads the run id of a completed or failed event; ok is false for other events.
func runEndOf(args []byte, at time.Time) (runEnd, bool) {
	name, _, _, ok := parseFrame(args)
	if !ok || (string(name) != completedEvent && string(name) != failedEvent) {
		return runEnd{}, false
	}
	var payload [2]json.RawMessage
	var p struct {
		RunID string `json:"run_id"`
	}
	if json.Unmarshal(args, &payload) != nil || json.Unmarshal(payload[1], &p) != nil || p.RunID == "" {
		return runEnd{}, false
	}
	return runEnd{runID: p.RunID, failed: string(name) == failedEvent, at: at}, true
}

// runChatStep measures one chat fan-out step.
func runChatStep(ctx context.Context, tgt *target, env chatEnv, cfg chatStepConfig) (chatResult, error) {
	res := chatResult{chatStepConfig: cfg}
	api := apiClient{base: tgt.URL, http: &http.Client{Timeout: cfg.Timeout}}
	pace := int(cfg.Pace / time.Millisecond)
	var paced struct {
		Results []struct {
			Success bool   `json:"success"`
			Message string `json:"message"`
		} `json:"results"`
	}
	if err := api.call(ctx, tgt.Admin, "/model/update", map[string]any{"models": []any{map[string]any{"id": env.modelID, "token_delay_ms": pace}}}, &paced); err != nil {
		return res, fmt.Errorf("set the model's pace: %w", err)
	}
	if len(paced.Results) != 1 || !paced.Results[0].Success {
		return res, fmt.Errorf("set the model's pace: %+v", paced.Results)
	}
	owner, _ := clientTokens(tgt, 1, false)
	var started struct {
		AttemptID string `json:"attempt_id"`
		ChatID    string `json:"chat_id"`
	}
	if err := api.call(ctx, owner[0], "/attempt/start", map[string]any{"persona_id": env.personaID}, &started); err != nil {
		return res, err
	}
	topic := "attempt/" + started.AttemptID

	win := &window{}
	// The owner's socket: it sends the messages and hears the replies end. Its profile
	// receives the attempt's events too, so it also counts them (the published deltas,
	// when the event log cannot be read, and the topic's last number at the end).
	ref := newWatcher(topic, win, 0)
	ends := make(chan runEnd, 1024)
	wsURL, err := socketURL(tgt.URL)
	if err != nil {
		return res, err
	}
	sender, err := dialSIOPush(ctx, wsURL, owner[0], cfg.Timeout, func(args []byte, at time.Time) {
		ref.push(args, at)
		if e, ok := runEndOf(args, at); ok {
			select {
			case ends <- e:
			default:
			}
		}
	})
	if err != nil {
		return res, fmt.Errorf("connect the chat's owner: %w", err)
	}
	defer sender.Close()

	connectStart := time.Now()
	watchers, conns, shared, err := dialWatchers(ctx, tgt, cfg, topic, win)
	if err != nil {
		return res, err
	}
	res.SharedWatcher = shared
	disconnect := sync.OnceFunc(func() { closeAll(conns) })
	defer disconnect()
	if err := subscribeAll(ctx, conns, topic, cfg.Timeout); err != nil {
		return res, err
	}
	res.Connect = time.Since(connectStart)

	var lastEnd atomic.Int64 // when the latest reply ended at the owner's socket
	var sent atomic.Int64
	rec, err := fanoutWindow(ctx, tgt, cfg, win, &res, "the chat's owner", func(stop <-chan struct{}, rec *recorder) error {
		return sendChat(ctx, sender, started.ChatID, ends, stop, rec, &lastEnd, &sent, cfg.Timeout)
	})
	if err != nil {
		return res, err
	}
	last := settledSeq(ctx, ref, 200*time.Millisecond, cfg.Timeout)
	drainWatchers(ctx, &res, watchers, last, lastEnd.Load())
	disconnect()
	sender.Close()

	published, err := readPublishTimes(ctx, tgt, topic, last)
	if err != nil {
		return res, fmt.Errorf("read the event log: %w", err)
	}
	res.AllReplies = sent.Load()
	res.account(rec, ref, watchers, published, last, win)
	return res, nil
}

// fanoutWindow runs send, the owner's loop, from now on through the warm-up and the
// measured window of cfg (set on win), takes the server's CPU time and memory at the ends
// of the window, then stops send and waits for it to finish the message in progress. who
// names the owner in errors. It returns the owner's tally of its messages.
func fanoutWindow(ctx context.Context, tgt *target, cfg chatStepConfig, win *window, res *chatResult, who string,
	send func(stop <-chan struct{}, rec *recorder) error) (*recorder, error) {
	measureFrom := time.Now().Add(cfg.Warmup)
	measureTo := measureFrom.Add(cfg.Duration)
	win.set(measureFrom, measureTo)
	stopSending := make(chan struct{})
	rec := &recorder{window: [2]time.Time{measureFrom, measureTo}}
	senderDone := make(chan error, 1)
	go func() { senderDone <- send(stopSending, rec) }()

	sleep := func(until time.Time) error {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-senderDone:
			if err == nil {
				err = fmt.Errorf("%s stopped early", who)
			}
			return err
		case <-t.C:
			return nil
		}
	}
	if err := sleep(measureFrom); err != nil {
		close(stopSending)
		return nil, err
	}
	s0 := takeCPU(tgt)
	if err := sleep(measureTo); err != nil {
		close(stopSending)
		return nil, err
	}
	s1 := takeCPU(tgt)
	if tgt.serverRSS != nil {
		res.ServerRSS, _ = tgt.serverRSS()
	}
	close(stopSending)
	if err := <-senderDone; err != nil {
		return nil, err
	}
	res.Window = measureTo.Sub(measureFrom)
	res.cpuUsage = cpuBetween(tgt, s0, s1)
	return rec, nil
}

// drainWatchers waits until every watcher has the topic's events up to last (or the drain
// limit passed), and records how long that took after lastEnd (Unix ns), the end of the
// owner's last message.
func drainWatchers(ctx context.Context, res *chatResult, watchers []*watcher, last, lastEnd int64) {
	res.Drained, res.Behind = drain(ctx, watchers, last, max(res.Timeout, 10*time.Second))
	if res.Drained {
		latest := int64(0)
		for _, w := range watchers {
			latest = max(latest, w.lastAt.Load())
		}
		res.Drain = max(time.Duration(latest-lastEnd), 0)
	}
}

// account fills in what the owner (rec, ref) and the watchers counted, once the watchers
// are closed. published holds the server's publish times (nil: unknown; the owner's socket
// then counts the published deltas) and last is the topic's last number.
func (r *chatResult) account(rec *recorder, ref *watcher, watchers []*watcher, published *publishTimes, last int64, win *window) {
	r.Errors, r.ErrKinds = rec.errs, rec.kinds
	r.Replies = int64(len(rec.lat))
	r.ReplyP50, _, _, _ = percentiles(rec.lat)
	r.Published = ref.deltas
	r.AllDeltas = ref.total
	for _, w := range watchers {
		r.Delivered += w.deltas
		r.Lost += w.lost
		r.Disorder += w.disorder
	}
	if published != nil {
		r.LatKnown = true
		r.PublishedLog = true
		r.Published = published.deltasIn(win.from.Load(), win.to.Load())
	}
	lat, spread := latencies(watchers, published, last)
	r.Samples = len(spread)
	if r.LatKnown {
		r.P50, r.P90, r.P99, r.Max = percentiles(lat)
	}
	if r.Watchers > 1 {
		var p50, p99 time.Duration
		p50, _, p99, _ = percentiles(spread)
		r.Spread50, r.Spread99 = p50, p99
	}
}

// watcherTokens gives each watcher its own level-0 profile's token, or every watcher the
// admin's token when there are not enough (an external server without its database).
// dialWatchers connects the step's watching sockets, each recording what it gets of topic;
// shared says they share one token (see watcherTokens).
func dialWatchers(ctx context.Context, tgt *target, cfg chatStepConfig, topic string, win *window) ([]*watcher, []*sioConn, bool, error) {
	tokens, shared := watcherTokens(tgt, cfg.Watchers)
	limit := max(maxSamples/cfg.Watchers, 1)
	watchers := make([]*watcher, cfg.Watchers)
	for i := range watchers {
		watchers[i] = newWatcher(topic, win, limit)
	}
	conns, err := dialAllPush(ctx, tgt.URL, tokens, cfg.Timeout, func(i int) func([]byte, time.Time) { return watchers[i].push })
	return watchers, conns, shared, err
}

func watcherTokens(tgt *target, n int) ([]string, bool) {
	return pickTokens(tgt.Watchers, tgt.Admin, n, false)
}

// subscribeAll makes every socket follow topic from now on.
func subscribeAll(ctx context.Context, conns []*sioConn, topic string, timeout time.Duration) error {
	body, _ := json.Marshal(map[string]any{"topics": []map[string]string{{"topic": topic}}})
	sem := make(chan struct{}, dialConcurrency)
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			args, err := c.Call(ctx, "system.subscribe", body, timeout)
			if err != nil {
				errs[i] = err
				return
			}
			status, b, err := decodeAck(args)
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("system.subscribe answered %d: %s", status, truncate(b, 200))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sendChat sends messages back to back until stop is closed: each after the reply to the
// previous one completed. The message in progress when stop closes is finished.
func sendChat(ctx context.Context, c *sioConn, chatID string, ends <-chan runEnd, stop <-chan struct{},
	rec *recorder, lastEnd, replies *atomic.Int64, timeout time.Duration) error {
	for i := 1; ; i++ {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		t0 := time.Now()
		end, err := sendOne(ctx, c, chatMessage(chatID, i), ends, timeout)
		if errors.Is(err, errClosed) || ctx.Err() != nil {
			return fmt.Errorf("chat message %d: %w", i, err)
		}
		if end.at.IsZero() {
			end.at = time.Now()
		}
		rec.done(t0, end.at, err)
		lastEnd.Store(end.at.UnixNano())
		if err == nil {
			replies.Add(1)
		}
	}
}

// sendOne sends one message and waits for its reply to end.
func sendOne(ctx context.Context, c *sioConn, body []byte, ends <-chan runEnd, timeout time.Duration) (runEnd, error) {
	args, err := c.Call(ctx, "attempt.chat_message", body, timeout)
	if err != nil {
		return runEnd{}, err
	}
	status, b, err := decodeAck(args)
	if err != nil {
		return runEnd{}, err
	}
	if status != http.StatusOK {
		return runEnd{}, statusError(status)
	}
	var ack struct {
		ReplyRunID string `json:"reply_run_id"`
	}
	if err := json.Unmarshal(b, &ack); err != nil || ack.ReplyRunID == "" {
		return runEnd{}, fmt.Errorf("attempt.chat_message answered no reply_run_id: %s", truncate(b, 200))
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e := <-ends:
			if e.runID != ack.ReplyRunID {
				continue // an earlier reply's end
			}
			if e.failed {
				return e, errors.New("the reply failed")
			}
			return e, nil
		case <-deadline.C:
			return runEnd{}, errTimeout
		case <-ctx.Done():
			return runEnd{}, ctx.Err()
		case <-c.done:
			return runEnd{}, fmt.Errorf("%w: %v", errClosed, c.closeErr())
		}
	}
}

// settledSeq waits until the owner's socket has heard nothing new of the topic for quiet
// (the announcement of the last reply follows its completed event), and returns the
// topic's last number.
func settledSeq(ctx context.Context, ref *watcher, quiet, limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	last, since := ref.last.Load(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
		if n := ref.last.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			break
		}
	}
	return last
}

// drain waits until every watcher has the topic's events up to last, or limit passed; it
// reports how many events the watchers were still missing then.
func drain(ctx context.Context, watchers []*watcher, last int64, limit time.Duration) (bool, int64) {
	deadline := time.Now().Add(limit)
	for {
		var behind int64
		for _, w := range watchers {
			behind += max(last-w.last.Load(), 0)
		}
		if behind == 0 {
			return true, 0
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, behind
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishTimes is when the server published each event of a topic, by number, as stored in
// its event log; deltas marks the deltas.
type publishTimes struct {
	at     []int64 // Unix ns by seq; 0 for unknown numbers
	deltas []bool
}

func (p *publishTimes) deltasIn(from, to int64) int64 {
	var n int64
	for seq, at := range p.at {
		if p.deltas[seq] && at >= from && at < to {
			n++
		}
	}
	return n
}

// readPublishTimes reads the topic's events up to last from the server's database; nil
// when the database is not known.
func readPublishTimes(ctx context.Context, tgt *target, topic string, last int64) (*publishTimes, error) {
	if tgt.dataDir == "" && tgt.databaseURL == "" {
		return nil, nil
	}
	st, err := store.Open(ctx, store.Config{DataDir: tgt.dataDir, DatabaseURL: tgt.databaseURL})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	p := &publishTimes{at: make([]int64, last+1), deltas: make([]bool, last+1)}
	for after := int64(0); after < last; {
		evs, err := st.Q().EventsAfter(ctx, topic, after, 5000)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			after = ev.Seq
			if ev.Seq <= last {
				p.at[ev.Seq] = ev.CreatedAt.UnixNano()
				p.deltas[ev.Seq] = ev.Name == deltaEvent
			}
		}
	}
	return p, nil
}

// latencies joins the watchers' samples to the publish times (nil: unknown) and to the
// first receipt of each delta by any watcher.
func latencies(watchers []*watcher, published *publishTimes, last int64) (lat, spread []time.Duration) {
	first := make([]int64, last+1)
	for i := range first {
		first[i] = math.MaxInt64
	}
	n := 0
	for _, w := range watchers {
		n += len(w.samples)
		for _, s := range w.samples {
			if s.seq <= last {
				first[s.seq] = min(first[s.seq], s.at)
			}
		}
	}
	spread = make([]time.Duration, 0, n)
	if published != nil {
		lat = make([]time.Duration, 0, n)
	}
	for _, w := range watchers {
		for _, s := range w.samples {
			if s.seq > last {
				continue
			}
			spread = append(spread, time.Duration(s.at-first[s.seq]))
			if published != nil && published.at[s.seq] != 0 {
				lat = append(lat, time.Duration(s.at-published.at[s.seq]))
			}
		}
	}
	return lat, spread
}
