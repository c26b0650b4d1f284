package test

// Two glow nodes on one PostgreSQL database and one Redis, as behind a load balancer: what
// happens through one node reaches the sockets of the other.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testserver"
)

// clusterSetup is two nodes, a learner of a department and a persona of it.
type clusterSetup struct {
	a, b    *testserver.Env
	learner string
	profile uuid.UUID
	persona string
}

func clusterStart(t *testing.T) *clusterSetup {
	t.Helper()
	nodes := testserver.StartCluster(t, 2, &server.Options{LocalTokenDelay: time.Nanosecond})
	s := &clusterSetup{a: nodes[0], b: nodes[1]}
	dep := s.a.Department(t, "cl-sales")
	s.learner = s.a.Token(t, "cl-learner", "learner", "cl-sales")
	p, err := s.a.Server.Store.Q().ProfileByName(context.Background(), "cl-learner")
	if err != nil {
		t.Fatal(err)
	}
	s.profile = p.ID
	created := s.a.Post(t, s.a.Admin, "/persona/create", map[string]any{"personas": []map[string]any{
		{"name": "Cy", "description": "a buyer", "department_ids": []uuid.UUID{dep}}}})
	if created.Status != http.StatusOK {
		t.Fatalf("persona.create: %d %s", created.Status, created.Body)
	}
	s.persona = pathValue(created.JSON(t), "results.0.persona_id").(string)
	return s
}

// topicEvents returns the events of topic a socket received (replay_done aside), in the
// order it did.
func topicEvents(t *testing.T, c *testserver.Client, topic string) []events.Event {
	t.Helper()
	var out []events.Event
	for _, ev := range c.Events() {
		var p struct {
			Topic string `json:"topic"`
			Seq   int64  `json:"seq"`
		}
		if ev.Name != "replay_done" && json.Unmarshal(ev.Data, &p) == nil && p.Topic == topic {
			out = append(out, events.Event{Topic: p.Topic, Seq: p.Seq, Name: ev.Name, Data: ev.Data})
		}
	}
	return out
}

// requireWhole fails unless evs are the topic's stored events from 1 on, each once, in order.
func requireWhole(t *testing.T, who string, evs []events.Event, stored []events.Event) {
	t.Helper()
	if len(evs) != len(stored) {
		var got []string
		for _, ev := range evs {
			got = append(got, fmt.Sprintf("%s#%d", ev.Name, ev.Seq))
		}
		t.Fatalf("%s got %d events of the topic, %d are stored: %v", who, len(evs), len(stored), got)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || ev.Name != stored[i].Name {
			t.Fatalf("%s: event %d is %s #%d, want %s #%d", who, i, ev.Name, ev.Seq, stored[i].Name, i+1)
		}
	}
}

// TestClusterChatStreamsAcrossNodes: the learner's sockets on nodes A and B follow an
// attempt; a chat message is sent through A over HTTP and, while its reply streams, another
// through B, so each node generates a reply into the same topic at once. Every socket, on
// either node, gets the attempt's topic whole, in order, each event once — the messages,
// every delta of both replies, their completions — as the database numbered it. A socket
// that comes to B afterwards replays the topic, and B's SSE stream of it is the same. The
// learner's sockets on B also get the lifecycle events of the calls it makes through A.
func TestClusterChatStreamsAcrossNodes(t *testing.T) {
	s := clusterStart(t)
	ctx := context.Background()
	started := s.a.Post(t, s.learner, "/attempt/start", map[string]any{"persona_id": s.persona})
	if started.Status != http.StatusOK {
		t.Fatalf("attempt.start on A: %d %s", started.Status, started.Body)
	}
	attempt := started.JSON(t)
	topic := "attempt/" + attempt["attempt_id"].(string)

	var watchers []*testserver.Client
	for _, node := range []*testserver.Env{s.b, s.b, s.a} {
		c := node.Dial(t, s.learner)
		status, body := c.Call(t, "system.subscribe", map[string]any{"topics": []map[string]any{{"topic": topic, "since": 0}}})
		if status != http.StatusOK {
			t.Fatalf("system.subscribe: %d %s", status, body)
		}
		watchers = append(watchers, c)
	}
	// The lifecycle events of the learner's calls through A reach its sockets on B once A
	// has heard that B has an audience for the profile's topic.
	profileTopic := events.ProfileTopic(s.profile)
	deadline := time.Now().Add(5 * time.Second)
	for !s.a.Server.Bus.Wanted(profileTopic) {
		if time.Now().After(deadline) {
			t.Fatal("node A never heard that node B has the learner's sockets")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var runs []string
	for i, node := range []*testserver.Env{s.a, s.b, s.a} {
		sent := node.Post(t, s.learner, "/attempt/chat/message", map[string]any{"chat_id": attempt["chat_id"], "text": fmt.Sprintf("question %d", i)})
		if sent.Status != http.StatusOK {
			t.Fatalf("attempt.chat_message %d: %d %s", i, sent.Status, sent.Body)
		}
		runs = append(runs, sent.JSON(t)["reply_run_id"].(string))
	}
	for i, run := range runs {
		for _, c := range watchers {
			c.WaitEvent(t, "attempt.generate.completed", func(d json.RawMessage) bool {
				var p struct {
					RunID string `json:"run_id"`
				}
				return json.Unmarshal(d, &p) == nil && p.RunID == run
			}, 20*time.Second)
			if i == 0 {
				c.WaitEvent(t, "attempt.chat_message.completed", nil, 5*time.Second)
			}
		}
	}
	for _, node := range []*testserver.Env{s.a, s.b} {
		if err := node.Server.Events.Synced(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.a.Server.Events.After(ctx, topic, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) < 10 {
		t.Fatalf("only %d events stored on the topic", len(stored))
	}
	// The last events may still be on their way to B.
	for i, c := range watchers {
		for end := time.Now().Add(5 * time.Second); len(topicEvents(t, c, topic)) < len(stored) && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
		requireWhole(t, fmt.Sprintf("watcher %d", i+1), topicEvents(t, c, topic), stored)
	}

	late := s.b.Dial(t, s.learner)
	status, body := late.Call(t, "system.subscribe", map[string]any{"topics": []map[string]any{{"topic": topic, "since": 0}}})
	if status != http.StatusOK {
		t.Fatalf("a late system.subscribe on B: %d %s", status, body)
	}
	late.WaitEvent(t, "replay_done", nil, 5*time.Second)
	requireWhole(t, "a late socket on B", topicEvents(t, late, topic), stored)

	frames := sseFrames(t, s.b.URL+"/attempt/stream?topic="+topic+"&since=0", s.learner, len(stored))
	if len(frames) != len(stored) {
		t.Fatalf("B's SSE stream of the topic has %d frames, %d events are stored", len(frames), len(stored))
	}
	for i, f := range frames {
		if f.event != stored[i].Name {
			t.Fatalf("SSE frame %d on B is %s, want %s", i, f.event, stored[i].Name)
		}
	}
}

// TestClusterRevocationReachesEveryNode: a token revoked through node A (a write to the
// shared database, as glow token revoke does) disconnects its sockets on node B within
// two seconds; B refuses it afterwards, and the profile's other session stays.
func TestClusterRevocationReachesEveryNode(t *testing.T) {
	s := clusterStart(t)
	ctx := context.Background()
	other := s.a.Token(t, "cl-learner", "learner", "cl-sales")
	revoked, kept := s.b.Dial(t, s.learner), s.b.Dial(t, other)
	tok, err := s.a.Server.Store.Q().TokenByHash(ctx, auth.HashToken(s.learner))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if ok, err := s.a.Server.Store.Q().RevokeToken(ctx, tok.ID); !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	select {
	case <-revoked.Disconnected():
		t.Logf("the socket on B was disconnected %s after the revocation", time.Since(start))
	case <-time.After(followWithin):
		t.Fatalf("the socket of the revoked token on B is still connected %s after the revocation", followWithin)
	}
	if _, err := s.b.DialErr(t, s.learner); err == nil {
		t.Fatal("B accepted the revoked token")
	}
	if status, body := kept.Call(t, "profile.context", map[string]any{}); status != http.StatusOK {
		t.Fatalf("the profile's other session on B: %d %s", status, body)
	}
}

type sseFrame struct{ id, event, data string }

// sseFrames reads the frames of an SSE stream until n event frames (replay_done aside) have
// come, or five seconds have passed.
func sseFrames(t *testing.T, url, token string, n int) []sseFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	var frames []sseFrame
	var f sseFrame
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for len(frames) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if f.event != "" && f.event != "replay_done" {
				frames = append(frames, f)
			}
			f = sseFrame{}
		case strings.HasPrefix(line, "id:"):
			f.id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "event:"):
			f.event = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			f.data += strings.TrimSpace(line[5:])
		}
	}
	return frames
}

// TestClusterReadinessFollowsRedis: a node of a cluster is ready while its database and
// Redis answer; once its Redis connection is gone, /readyz says 503 with reason "redis".
func TestClusterReadinessFollowsRedis(t *testing.T) {
	s := clusterStart(t)
	ready := func() (int, string) {
		res, err := http.Get(s.b.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body["reason"]
	}
	if code, reason := ready(); code != http.StatusOK {
		t.Fatalf("/readyz of a node with Redis: %d %s", code, reason)
	}
	_ = s.b.Server.Bus.Close()
	if code, reason := ready(); code != http.StatusServiceUnavailable || reason != "redis" {
		t.Fatalf("/readyz of a node without Redis: %d %q, want 503 redis", code, reason)
	}
}
