// Command searchbench measures the standard family's search over many records: it fills a
// new embedded database with -rows agents (names and descriptions of random words, each in
// some of five departments, linked to some of twenty tools and to the local model), serves
// it in this process as glow serve does, and times POST /agent/search calls of an editor of
// two departments, one after another, for a few shapes of query. It writes the numbers to
// the section "Search over many records" of -out (replacing that section, or adding it).
//
//	go run ./tools/searchbench -rows 100000 -calls 300 -out docs/BENCHMARKS.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/store"
)

// words make the records' names and descriptions; a query for one of them matches about
// one record in len(words)/3 (three words each).
var words = strings.Fields(`amber birch cedar delta ember fjord grove harbor iris juniper kestrel lagoon maple
	nectar onyx prairie quartz raven sierra tundra umber violet willow xenon yarrow zephyr acorn basalt cobalt
	dune elm flint garnet hazel indigo jasper kelp lichen marble nimbus ochre pebble quill reed slate thistle`)

type shape struct {
	Name, Body string
}

func main() {
	rows := flag.Int("rows", 100000, "agents to create (1–1000000)")
	calls := flag.Int("calls", 300, "measured calls per shape (10–100000), after a tenth as many unmeasured")
	out := flag.String("out", "", "write the section to this Markdown file (replacing the section if it is there)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measured calls to this file (go tool pprof)")
	flag.Parse()
	if *rows < 1 || *rows > 1_000_000 || *calls < 10 || *calls > 100_000 {
		fmt.Fprintln(os.Stderr, "searchbench: -rows must be 1–1000000 and -calls 10–100000")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := run(ctx, *rows, *calls, *out, *profile); err != nil {
		fmt.Fprintf(os.Stderr, "searchbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rows, calls int, out, profile string) error {
	dir, err := os.MkdirTemp("", "glow-searchbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := server.Defaults()
	opts.DataDir, opts.LogLevel = dir, "warn"
	srv, err := server.New(ctx, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	started := time.Now()
	fixture, err := seed(ctx, srv.Store, rows)
	if err != nil {
		return err
	}
	seeded := time.Since(started)
	fmt.Fprintf(os.Stderr, "searchbench: %d agents in %s\n", rows, seeded.Round(time.Millisecond))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(serveCtx, l) }()
	defer func() { stop(); <-done }()
	url := "http://" + l.Addr().String()

	shapes := []shape{
		{"the first page, no filter", `{}`},
		{"text", `{"search":"maple"}`},
		{"text and a tool facet", fmt.Sprintf(`{"search":"maple","filter_tool_ids":[%q]}`, fixture.tool)},
		{"a department facet, page 5", fmt.Sprintf(`{"filter_department_ids":[%q],"page_offset":48}`, fixture.department)},
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	client := &http.Client{Timeout: time.Minute}
	var results []measured
	for _, s := range shapes {
		m, err := measure(ctx, client, url, fixture.token, s, calls)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
		fmt.Fprintf(os.Stderr, "searchbench: %-28s p50 %s p99 %s (%d matches)\n", s.Name, ms(m.p50), ms(m.p99), m.total)
		results = append(results, m)
	}
	if out == "" {
		return nil
	}
	return writeSection(out, render(rows, calls, seeded, results))
}

type fixture struct {
	token            string
	tool, department uuid.UUID
}

// seed creates the records: 20 tools, 5 departments, and rows agents in batches.
func seed(ctx context.Context, st *store.Store, rows int) (fixture, error) {
	var f fixture
	rng := rand.New(rand.NewPCG(1, 2)) // the same records on every run
	var departments []uuid.UUID
	var creator uuid.UUID
	err := st.Tx(ctx, func(q store.Q) error {
		issued, err := auth.Issue(ctx, q, "searchbench-editor", "editor", "searchbench", "department 1", "department 2")
		if err != nil {
			return err
		}
		f.token, creator = issued.Token, issued.Profile.ID
		for i := range 5 {
			d, err := q.EnsureDepartment(ctx, fmt.Sprintf("department %d", i+1), creator)
			if err != nil {
				return err
			}
			departments = append(departments, d.ID)
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	now := store.Now()
	var tools []uuid.UUID
	err = st.Tx(ctx, func(q store.Q) error {
		for i := range 20 {
			r := store.Record{ID: store.NewID(), Kind: "tool", Name: fmt.Sprintf("Tool %d", i+1), CreatedBy: creator,
				CreatedAt: now, UpdatedAt: now, Links: map[string][]uuid.UUID{store.DepartmentsRelation: departments[:2]}}
			tools = append(tools, r.ID)
			if err := q.InsertRecord(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	f.tool, f.department = tools[0], departments[0]
	localModel := uuid.MustParse("00000000-0000-7000-8000-000000000002")
	fields := map[string]json.RawMessage{"instructions": json.RawMessage(`"Answer briefly."`), "temperature": json.RawMessage(`0.7`),
		"reasoning_level": json.RawMessage(`"medium"`)}
	const batch = 2000
	for start := 0; start < rows; start += batch {
		err := st.Tx(ctx, func(q store.Q) error {
			for i := start; i < min(start+batch, rows); i++ {
				at := now.Add(time.Duration(i-rows) * time.Second)
				r := store.Record{ID: store.NewID(), Kind: "agent", Name: fmt.Sprintf("Agent %s %s %d", pick(rng), pick(rng), i),
					Description: "Knows " + pick(rng) + " well.", Fields: fields, CreatedBy: creator, CreatedAt: at, UpdatedAt: at,
					Links: map[string][]uuid.UUID{
						store.DepartmentsRelation: sample(rng, departments, 1+rng.IntN(2)),
						"tools":                   sample(rng, tools, rng.IntN(4)),
						"models":                  {localModel},
					}}
				if err := q.InsertRecord(ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func pick(rng *rand.Rand) string { return words[rng.IntN(len(words))] }

func sample(rng *rand.Rand, from []uuid.UUID, n int) []uuid.UUID {
	idx := rng.Perm(len(from))[:n]
	out := make([]uuid.UUID, n)
	for i, j := range idx {
		out[i] = from[j]
	}
	return out
}

type measured struct {
	shape
	p50, p99, max time.Duration
	total         int
}

// measure calls the shape calls/10 times unmeasured, then calls times, one after another.
func measure(ctx context.Context, client *http.Client, url, token string, s shape, calls int) (measured, error) {
	m := measured{shape: s}
	var took []time.Duration
	for i := range calls + calls/10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/agent/search", strings.NewReader(s.Body))
		if err != nil {
			return m, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		t0 := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return m, err
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return m, err
		}
		if res.StatusCode != http.StatusOK {
			return m, fmt.Errorf("status %d: %s", res.StatusCode, body)
		}
		if i < calls/10 {
			continue
		}
		took = append(took, d)
		var page struct {
			Total int `json:"total_count"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return m, err
		}
		m.total = page.Total
	}
	slices.Sort(took)
	rank := func(p float64) time.Duration { return took[max(0, int(float64(len(took))*p+0.999999)-1)] }
	m.p50, m.p99, m.max = rank(0.50), rank(0.99), took[len(took)-1]
	return m, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

const heading = "## Search over many records"

func render(rows, calls int, seeded time.Duration, results []measured) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("%s\n\n", heading)
	p("`agent.search` over %s agents on the embedded SQLite database, measured by `tools/searchbench`\n", thousands(rows))
	p("(`go run ./tools/searchbench -rows %d -calls %d -out docs/BENCHMARKS.md`; %s, %s, %d cores).\n",
		rows, calls, time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.Version(), runtime.NumCPU())
	p("Each agent has a name and description of random words, one or two of five departments, up to three of\n")
	p("twenty tools and the local model (%s to create them). The caller is an editor of two departments, so\n", seeded.Round(time.Second))
	p("every query is clamped to their scope; each answer is a page of 12 with the model, tool and department\n")
	p("facets counted. The calls run one after another over HTTP, in this process; %d measured per row\n", calls)
	p("after %d unmeasured. Latency is from sending the call to reading its answer (nearest-rank percentiles).\n\n", calls/10)
	p("| query | body | matches | p50 | p99 | max |\n|---|---|---:|---:|---:|---:|\n")
	for _, m := range results {
		body := m.Body
		if len(body) > 60 {
			body = body[:strings.Index(body, "[")+1] + "…]" + body[strings.LastIndex(body, "]")+1:]
		}
		p("| %s | `%s` | %s | %s | %s | %s |\n", m.Name, body, thousands(m.total), ms(m.p50), ms(m.p99), ms(m.max))
	}
	return b.Bytes()
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// writeSection replaces the section in the file (from its heading to the next heading of
// its level, or the end), or adds it at the end.
func writeSection(path string, section []byte) error {
	text, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	doc := string(text)
	if i := strings.Index(doc, heading+"\n"); i >= 0 {
		rest := doc[i+len(heading):]
		end := len(doc)
		if j := strings.Index(rest, "\n## "); j >= 0 {
			end = i + len(heading) + j + 1
		}
		doc = doc[:i] + string(section) + "\n" + doc[end:]
	} else {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		doc += string(section)
	}
	return os.WriteFile(path, []byte(strings.TrimRight(doc, "\n")+"\n"), 0o644)
}
