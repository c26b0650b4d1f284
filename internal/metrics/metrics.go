// Package metrics serves glow's metrics in the Prometheus text format (GET /metrics): the
// calls by operation, transport and status with their latencies, the open sockets, the
// events published, stored and delivered, the unfinished runs by status, the database's
// connection pool, and the Go runtime and process. The README lists the series.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glowhq/glow/internal/dispatch"
)

// Sources are what the metrics read at each scrape.
type Sources struct {
	Node      string                                            // which process serves them (host/pid), glow_node_info's label
	Sockets   func() int                                        // the open socket.io sockets
	Published func() int64                                      // events published since start
	Stored    func() int64                                      // of those, the durable ones (stored)
	Delivered func() int64                                      // events broadcast to sockets, once per socket
	Runs      func(ctx context.Context) (map[string]int, error) // the unfinished runs by status
	Pool      *sql.DB                                           // the database's connection pool
}

// Metrics holds glow's metrics. It is the dispatcher's Observer.
type Metrics struct {
	registry  *prometheus.Registry
	calls     *prometheus.CounterVec
	durations *prometheus.HistogramVec

	mu     sync.RWMutex
	series map[seriesKey]callSeries // the calls' series, looked up once each
}

type seriesKey struct {
	op        string
	transport dispatch.Transport
	status    int
}

type callSeries struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

// durationBuckets span a call answered from memory (~100 µs) to one at the call timeout.
var durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// runStatuses are the statuses of the unfinished runs, each a series even at zero.
var runStatuses = []string{"queued", "running", "paused", "interrupted"}

// scrapeTimeout bounds the database query of a scrape.
const scrapeTimeout = 5 * time.Second

// New builds the metrics over src.
func New(src Sources) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glow_calls_total",
			Help: "Calls answered, by operation (its operationId; \"unknown\" for a name that is none), transport and HTTP status.",
		}, []string{"op", "transport", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "glow_call_duration_seconds",
			Help:    "How long calls took, from their arrival at the dispatcher to their answer, by operation and transport.",
			Buckets: durationBuckets,
		}, []string{"op", "transport"}),
		series: map[seriesKey]callSeries{},
	}
	node := prometheus.NewGauge(prometheus.GaugeOpts{Name: "glow_node_info", Help: "1, labelled with the node (host/pid) these metrics come from.",
		ConstLabels: prometheus.Labels{"node": src.Node}})
	node.Set(1)
	m.registry.MustRegister(m.calls, m.durations, node,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "glow_sockets", Help: "Open socket.io sockets."},
			func() float64 { return float64(src.Sockets()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glow_events_published_total", Help: "Events published, live and durable."},
			func() float64 { return float64(src.Published()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glow_events_stored_total", Help: "Durable events written to the event log."},
			func() float64 { return float64(src.Stored()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "glow_socket_events_delivered_total", Help: "Events sent to sockets, counted once per socket."},
			func() float64 { return float64(src.Delivered()) }),
		&runsCollector{count: src.Runs, desc: prometheus.NewDesc("glow_runs", "Unfinished runs, by status.", []string{"status"}, nil)},
		collectors.NewDBStatsCollector(src.Pool, "glow"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveCall counts a call and its duration (dispatch.Observer).
func (m *Metrics) ObserveCall(op string, transport dispatch.Transport, status int, took time.Duration) {
	key := seriesKey{op: op, transport: transport, status: status}
	m.mu.RLock()
	s, ok := m.series[key]
	m.mu.RUnlock()
	if !ok {
		s = m.newSeries(key)
	}
	s.calls.Inc()
	s.duration.Observe(took.Seconds())
}

// newSeries looks up the series of a call's labels, the first time they are seen. The
// labels are bounded: the operations of the spec (or "unknown"), two transports, and the
// statuses glow answers.
func (m *Metrics) newSeries(key seriesKey) callSeries {
	op := key.op
	if op == "" {
		op = "unknown"
	}
	s := callSeries{
		calls:    m.calls.WithLabelValues(op, string(key.transport), strconv.Itoa(key.status)),
		duration: m.durations.WithLabelValues(op, string(key.transport)),
	}
	m.mu.Lock()
	m.series[key] = s
	m.mu.Unlock()
	return s
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// runsCollector counts the unfinished runs at each scrape.
type runsCollector struct {
	count func(ctx context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	runs, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, status := range runStatuses {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(runs[status]), status)
	}
}
