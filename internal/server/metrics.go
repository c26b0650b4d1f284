package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/store"
)

// pushMetrics publishes a snapshot of the server on system/metrics every MetricsInterval,
// for the level 0 profiles that follow it.
func (s *Server) pushMetrics(ctx context.Context) {
	host, _ := os.Hostname()
	node := fmt.Sprintf("%s/%d", host, os.Getpid())
	t := time.NewTicker(s.opts.MetricsInterval)
	defer t.Stop()
	last := time.Now()
	lastCalls, lastEvents, lastTokens := s.Dispatch.Calls(), s.Events.Published(), s.Runner.Tokens()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		secs := now.Sub(last).Seconds()
		calls, stored, tokens := s.Dispatch.Calls(), s.Events.Published(), s.Runner.Tokens()
		runs, err := s.Store.Q().CountRunsByStatus(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("count runs for metrics", "err", err)
		}
		online := s.Presence.Online()
		sockets := 0
		for _, n := range online {
			sockets += n
		}
		data, _ := json.Marshal(map[string]any{
			"at":                store.Now(),
			"node":              node,
			"sockets":           sockets,
			"profiles_online":   len(online),
			"calls_per_second":  float64(calls-lastCalls) / secs,
			"events_per_second": float64(stored-lastEvents) / secs,
			"runs": map[string]int{"queued": runs[store.RunQueued], "running": runs[store.RunRunning],
				"paused": runs[store.RunPaused], "interrupted": runs[store.RunInterrupted]},
			"tokens_per_second": float64(tokens-lastTokens) / secs,
			"tokens_total":      tokens,
		})
		s.Events.Publish(events.Event{Topic: events.MetricsTopic, Name: "system.metrics", Data: data})
		last, lastCalls, lastEvents, lastTokens = now, calls, stored, tokens
	}
}
