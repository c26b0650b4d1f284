package test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/glowhq/glow/internal/node"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// GET /metrics serves the Prometheus text format, without a token: calls by operation,
// transport and status (a name that is no operation counts as "unknown"), their latencies,
// the open sockets, the events delivered to them, the unfinished runs and the database pool.
func TestMetricsCountCallsSocketsAndEvents(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			token := env.Token(t, "measured", "learner")
			sock := env.Dial(t, token)
			for range 2 {
				if res := env.Post(t, token, "/profile/context", `{}`); res.Status != http.StatusOK {
					t.Fatalf("profile.context over HTTP: %d", res.Status)
				}
			}
			if status, _ := sock.Call(t, "profile.context", map[string]any{}); status != http.StatusOK {
				t.Fatalf("profile.context over socket.io: %d", status)
			}
			if status, _ := sock.Call(t, "persona.nope", map[string]any{}); status != http.StatusNotFound {
				t.Fatalf("an unknown event: %d", status)
			}
			if res := env.Post(t, "", "/profile/context", `{}`); res.Status != http.StatusUnauthorized {
				t.Fatalf("no token: %d", res.Status)
			}
			// The socket.io call's .started and .completed reach the socket, and are counted.
			sock.WaitEvent(t, "profile.context.completed", nil, 5*time.Second)

			m := scrape(t, env)
			calls := map[string]float64{
				`op="profile.context",status="200",transport="http"`:     2,
				`op="profile.context",status="200",transport="socketio"`: 1,
				`op="profile.context",status="401",transport="http"`:     1,
				`op="unknown",status="404",transport="socketio"`:         1,
			}
			for labels, want := range calls {
				if got := value(m, "glow_calls_total", labels); got != want {
					t.Errorf("glow_calls_total{%s} = %v, want %v", labels, got, want)
				}
			}
			if got := histogramCount(m, "glow_call_duration_seconds", `op="profile.context",transport="http"`); got != 3 {
				t.Errorf("glow_call_duration_seconds{op=profile.context,transport=http} counts %d calls, want 3", got)
			}
			if got := value(m, "glow_sockets", ""); got != 1 {
				t.Errorf("glow_sockets = %v, want 1", got)
			}
			if got := value(m, "glow_socket_events_delivered_total", ""); got < 2 {
				t.Errorf("glow_socket_events_delivered_total = %v, want at least the socket call's 2 lifecycle events", got)
			}
			if got := value(m, "glow_events_published_total", ""); got < 4 {
				t.Errorf("glow_events_published_total = %v, want at least 4 (two per successful call)", got)
			}
			for _, status := range []string{"queued", "running", "paused", "interrupted"} {
				if got := value(m, "glow_runs", `status="`+status+`"`); got != 0 {
					t.Errorf("glow_runs{status=%s} = %v, want 0", status, got)
				}
			}
			if got := value(m, "go_sql_open_connections", `db_name="glow"`); got < 1 {
				t.Errorf("go_sql_open_connections{db_name=glow} = %v, want at least 1", got)
			}
			if got := value(m, "glow_node_info", `node="`+node.Self()+`"`); got != 1 {
				t.Errorf("glow_node_info{node=%s} = %v, want 1", node.Self(), got)
			}
			if _, ok := m["process_resident_memory_bytes"]; !ok {
				t.Error("no process_resident_memory_bytes")
			}
		})
	}
}

// scrape reads GET /metrics, which needs no token.
func scrape(t *testing.T, env *testserver.Env) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not the Prometheus text format: %v", err)
	}
	return families
}

// series finds the series of a family whose labels, written as `a="x",b="y"` in order, are
// labels ("" for a series without labels).
func series(m map[string]*dto.MetricFamily, name, labels string) *dto.Metric {
	f := m[name]
	if f == nil {
		return nil
	}
	for _, s := range f.GetMetric() {
		var parts []string
		for _, l := range s.GetLabel() {
			parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
		}
		if strings.Join(parts, ",") == labels {
			return s
		}
	}
	return nil
}

// value is a counter's or gauge's value; -1 when there is no such series.
func value(m map[string]*dto.MetricFamily, name, labels string) float64 {
	s := series(m, name, labels)
	switch {
	case s == nil:
		return -1
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return -1
}

// histogramCount is how many observations a histogram series holds; -1 when there is none.
func histogramCount(m map[string]*dto.MetricFamily, name, labels string) int {
	s := series(m, name, labels)
	if s == nil || s.Histogram == nil {
		return -1
	}
	return int(s.Histogram.GetSampleCount())
}
