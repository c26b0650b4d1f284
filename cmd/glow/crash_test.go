package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
)

// TestAcknowledgedChangesSurviveSIGKILL kills the server while chats are being written to
// and replied to, and restarts it: every message whose call was answered is there, every
// stored message has exactly one attempt.chat.message event, no event announces a message
// that is not stored, no run's completion lacks its event (or the other way round), and each
// topic's numbers have no gap.
func TestAcknowledgedChangesSurviveSIGKILL(t *testing.T) {
	bin := buildGlow(t)
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			cfg := d.Config(t)
			db := []string{"--data-dir", cfg.DataDir, "--database-url", cfg.DatabaseURL}
			code, out, errOut := glow(t, append([]string{"token", "create", "--profile", "ada", "--role", "editor", "--department", "sales"}, db...)...)
			if code != 0 {
				t.Fatalf("token create: %d %s", code, errOut)
			}
			c := &client{token: strings.TrimSpace(out)}

			// Replies stream fast, so that many complete (and some are mid-way) when the
			// server dies.
			srv := startGlow(t, bin, db, "GLOW_LOCAL_TOKEN_DELAY=1ms")
			c.base = srv.url
			var persona struct {
				Results []struct {
					PersonaID string `json:"persona_id"`
					Message   string `json:"message"`
				} `json:"results"`
			}
			c.must(t, "persona/create", `{"personas":[{"name":"Sam","description":"a patient customer"}]}`, &persona)
			if len(persona.Results) != 1 || persona.Results[0].PersonaID == "" {
				t.Fatalf("persona/create: %+v", persona)
			}
			const chats = 6
			chatIDs := make([]string, chats)
			for i := range chatIDs {
				var a struct {
					ChatID string `json:"chat_id"`
				}
				c.must(t, "attempt/start", fmt.Sprintf(`{"persona_id":%q}`, persona.Results[0].PersonaID), &a)
				chatIDs[i] = a.ChatID
			}

			// One writer per chat, until the server is killed.
			var mu sync.Mutex
			acked := map[string]bool{} // message ids whose call was answered 200
			var wg sync.WaitGroup
			for i, chat := range chatIDs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; ; n++ {
						var m struct {
							Message struct {
								ID string `json:"id"`
							} `json:"message"`
						}
						body := fmt.Sprintf(`{"chat_id":%q,"text":"message %d of writer %d"}`, chat, n, i)
						status, err := c.call("attempt/chat/message", body, &m)
						if status == http.StatusTooManyRequests { // the chat's replies are queued up
							time.Sleep(20 * time.Millisecond)
							continue
						}
						if err != nil || status != http.StatusOK {
							return
						}
						mu.Lock()
						acked[m.Message.ID] = true
						mu.Unlock()
					}
				}()
			}
			time.Sleep(1500 * time.Millisecond)
			srv.kill(t)
			wg.Wait()
			if len(acked) < chats {
				t.Fatalf("only %d calls were answered before the kill", len(acked))
			}

			srv = startGlow(t, bin, db)
			c.base = srv.url
			defer srv.kill(t)
			replies := 0
			for _, chat := range chatIDs {
				// The chat first, with its topic's number at that moment; then the topic's
				// events, read after it.
				var got struct {
					Topic    string `json:"topic"`
					LastSeq  int64  `json:"last_seq"`
					Messages []struct {
						ID   string `json:"id"`
						Role string `json:"role"`
					} `json:"messages"`
				}
				c.must(t, "attempt/chat/get", fmt.Sprintf(`{"chat_id":%q}`, chat), &got)
				stored := map[string]bool{}
				for _, m := range got.Messages {
					stored[m.ID] = true
					if m.Role == "assistant" {
						replies++
					}
				}
				announced := map[string]int{}
				completedRuns := map[string]bool{}
				var next int64 = 1
				for _, ev := range c.replay(t, got.Topic) {
					if ev.seq != next {
						t.Fatalf("%s: event #%d follows #%d: a gap", got.Topic, ev.seq, next-1)
					}
					next++
					var data struct {
						RunID   string `json:"run_id"`
						Message struct {
							ID string `json:"id"`
						} `json:"message"`
					}
					if err := json.Unmarshal(ev.data, &data); err != nil {
						t.Fatalf("%s #%d: %v", ev.name, ev.seq, err)
					}
					switch ev.name {
					case "attempt.chat.message":
						announced[data.Message.ID]++
						if ev.seq <= got.LastSeq && !stored[data.Message.ID] {
							t.Errorf("%s #%d announces message %s, which is not stored", got.Topic, ev.seq, data.Message.ID)
						}
					case "attempt.generate.completed":
						if ev.seq <= got.LastSeq {
							completedRuns[data.RunID] = true
						}
					}
				}
				for id := range stored {
					if announced[id] != 1 {
						t.Errorf("%s: stored message %s has %d attempt.chat.message events, want 1", got.Topic, id, announced[id])
					}
				}
				for run := range completedRuns {
					var r struct {
						Run struct {
							Status string `json:"status"`
						} `json:"run"`
					}
					c.must(t, "system/run/get", fmt.Sprintf(`{"run_id":%q}`, run), &r)
					if r.Run.Status != "completed" {
						t.Errorf("run %s announced completed is %s", run, r.Run.Status)
					}
				}
			}
			// Every acknowledged message is in one of the chats.
			all := map[string]bool{}
			for _, chat := range chatIDs {
				var got struct {
					Messages []struct {
						ID string `json:"id"`
					} `json:"messages"`
				}
				c.must(t, "attempt/chat/get", fmt.Sprintf(`{"chat_id":%q}`, chat), &got)
				for _, m := range got.Messages {
					all[m.ID] = true
				}
			}
			for id := range acked {
				if !all[id] {
					t.Errorf("acknowledged message %s is lost", id)
				}
			}
			t.Logf("%d calls answered before the kill; %d replies stored", len(acked), replies)
		})
	}
}

// buildGlow builds the glow binary into a temporary directory.
func buildGlow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "glow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// process is a glow serve running as its own process.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	done   chan struct{}
}

// startGlow runs glow serve on a free port with the database flags db and the extra
// environment env, and waits until it listens.
func startGlow(t *testing.T, bin string, db []string, env ...string) *process {
	t.Helper()
	addr := freeAddr(t)
	p := &process{cmd: exec.Command(bin, append([]string{"serve", "--addr", addr}, db...)...), url: "http://" + addr,
		stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill(t) })
	waitListening(t, addr)
	return p
}

// kill ends the process with SIGKILL and waits for it.
func (p *process) kill(t *testing.T) {
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not die within 10s of SIGKILL")
	}
}

// client calls glow over HTTP with a bearer token.
type client struct {
	base, token string
}

// call POSTs body to /<path> and decodes a 200 answer into out.
func (c *client) call(path, body string, out any) (int, error) {
	req, err := http.NewRequest(http.MethodPost, c.base+"/"+path, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("%s: %d %s", path, res.StatusCode, b)
	}
	return res.StatusCode, json.Unmarshal(b, out)
}

func (c *client) must(t *testing.T, path, body string, out any) {
	t.Helper()
	if _, err := c.call(path, body, out); err != nil {
		t.Fatal(err)
	}
}

type sseEvent struct {
	seq  int64
	name string
	data []byte
}

// replay reads a topic's stored events over SSE, from the first to replay_done.
func (c *client) replay(t *testing.T, topic string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+"/attempt/stream?since=0&topic="+topic, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("stream %s: %d %s", topic, res.StatusCode, b)
	}
	var evs []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			fmt.Sscan(line[4:], &ev.seq)
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = []byte(line[6:])
		case line == "":
			if ev.name == "replay_done" {
				return evs
			}
			if ev.name != "" {
				evs = append(evs, ev)
			}
			ev = sseEvent{}
		}
	}
	t.Fatalf("stream %s ended before replay_done: %v", topic, sc.Err())
	return nil
}
