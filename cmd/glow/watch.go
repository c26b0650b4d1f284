package main

// Following runs and chats from the terminal, over server-sent events (GET
// /<artifact>/stream, the token in its header).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// streamFrame is one frame of a stream.
type streamFrame struct {
	Name string
	Data json.RawMessage
}

// follow streams a topic's events named <artifact>.* (and replay_done) from since into
// events, until ctx ends or the stream does; it closes events when it returns.
func follow(ctx context.Context, base, token, artifact, topic string, since int64, events chan<- streamFrame) error {
	defer close(events)
	u := fmt.Sprintf("%s/%s/stream?topic=%s&since=%d", strings.TrimRight(base, "/"), artifact, url.QueryEscape(topic), since)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("follow %s: %d %s", topic, res.StatusCode, b)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var ev streamFrame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" {
				select {
				case events <- ev:
				case <-ctx.Done():
					return nil
				}
			}
			ev = streamFrame{}
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data = json.RawMessage(strings.TrimPrefix(line, "data: "))
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// runOf reads the run an operation started from its answer: run.id, or reply_run_id.
func runOf(answer []byte) string {
	var a struct {
		Run        struct{ ID string } `json:"run"`
		ReplyRunID string              `json:"reply_run_id"`
	}
	_ = json.Unmarshal(answer, &a)
	return firstOf(a.Run.ID, a.ReplyRunID)
}

// watchRun follows a run until it ends: its text to stdout as it streams, its progress as a
// bar on stderr. It returns the exit code: 0 completed, 5 failed, 4 stopped or waiting for
// an answer (which it prints).
func watchRun(base, token, runID string, stdout, stderr io.Writer) int {
	status, answer, err := post(base, token, "/system/run/get", []byte(`{"run_id":"`+runID+`"}`))
	var got struct {
		Run struct{ Artifact, Topic string } `json:"run"`
	}
	if err != nil || status != http.StatusOK || json.Unmarshal(answer, &got) != nil {
		fmt.Fprintf(stderr, "glow: the run %s: %d %s %v\n", runID, status, answer, err)
		return exitUnreachable
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	events := make(chan streamFrame, 256)
	done := make(chan error, 1)
	go func() { done <- follow(ctx, base, token, got.Run.Artifact, got.Run.Topic, 0, events) }()
	prefix := got.Run.Artifact + ".generate."
	for ev := range events {
		var d struct {
			RunID      string `json:"run_id"`
			Delta      string `json:"delta"`
			Percentage int    `json:"percentage"`
			Error      string `json:"error"`
			Question   string `json:"question"`
		}
		if json.Unmarshal(ev.Data, &d) != nil || d.RunID != runID {
			continue
		}
		switch strings.TrimPrefix(ev.Name, prefix) {
		case "text.progress":
			fmt.Fprint(stdout, d.Delta)
		case "progress":
			fmt.Fprintf(stderr, "\r[%-20s] %3d%%", strings.Repeat("#", d.Percentage/5), d.Percentage)
		case "completed":
			fmt.Fprintln(stdout)
			fmt.Fprintf(stderr, "\r[%s] 100%%\n", strings.Repeat("#", 20))
			return exitOK
		case "failed":
			fmt.Fprintf(stderr, "\nglow: the run failed: %s\n", d.Error)
			return exitServerError
		case "stopped":
			fmt.Fprintln(stderr, "\nglow: the run was stopped")
			return exitClientError
		case "interrupted":
			fmt.Fprintf(stderr, "\nglow: the run asks: %s\n(answer with: glow system run answer --run_id %s --answer …)\n", d.Question, runID)
			return exitClientError
		}
	}
	fmt.Fprintf(stderr, "\nglow: the stream of the run ended before it did: %v\n", <-done)
	return exitUnreachable
}
