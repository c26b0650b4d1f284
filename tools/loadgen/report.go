package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/glowhq/glow/gen"
)

// machine is what the numbers were measured on.
type machine struct {
	CPU    string
	Cores  int
	Go     string
	OS     string
	Memory string
}

func describeMachine() machine {
	m := machine{CPU: "unknown", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Memory: "unknown",
		Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if v := procField("/proc/cpuinfo", "model name"); v != "" {
		m.CPU = v
	}
	if v := procField("/etc/os-release", "PRETTY_NAME"); v != "" {
		m.OS = strings.Trim(v, `"`)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS += ", Linux " + strings.TrimSpace(string(b))
	}
	if v := procField("/proc/meminfo", "MemTotal"); v != "" {
		if f := strings.Fields(v); len(f) > 0 {
			if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return m
}

// codeVersion names the commit of the working tree, noting uncommitted changes to tracked
// files; "" outside a git checkout.
func codeVersion() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		v += ", with uncommitted changes"
	}
	return v
}

// procField returns the value of the first "key: value" or "key=value" line of a file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			k, v, ok = strings.Cut(line, "=")
		}
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r result) rate() float64 { return float64(r.OK) / r.Window.Seconds() }

func perCall(d time.Duration, calls int64) string {
	if calls == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(calls))
}

// cpuShare is CPU time over the window as a percentage of one core.
func cpuShare(d, window time.Duration) string {
	return fmt.Sprintf("%.0f %%", 100*d.Seconds()/window.Seconds())
}

func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
	}
}

func thousands(n float64) string {
	s := strconv.FormatInt(int64(n+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func errorsText(r result) string {
	if r.Errors == 0 {
		return "0"
	}
	kinds := make([]string, 0, len(r.ErrKinds))
	for k := range r.ErrKinds {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return r.ErrKinds[kinds[i]] > r.ErrKinds[kinds[j]] })
	if len(kinds) > 3 {
		kinds = kinds[:3]
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d× %s", r.ErrKinds[k], k)
	}
	return fmt.Sprintf("%d (%s)", r.Errors, strings.Join(parts, ", "))
}

func printStep(w io.Writer, r result, inProcess bool) {
	line := fmt.Sprintf("%-15s clients=%-4d inflight=%-2d calls/s=%-8s p50=%-9s p90=%-9s p99=%-9s max=%-9s errors=%s",
		r.Transport, r.Clients, r.InFlight, thousands(r.rate()), latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), errorsText(r))
	if r.CPUKnown {
		if inProcess {
			line += " process-cpu/call=" + perCall(r.ServerCPU, r.Calls())
		} else {
			line += fmt.Sprintf(" server-cpu/call=%s (%s) loadgen-cpu/call=%s (%s)",
				perCall(r.ServerCPU, r.Calls()), cpuShare(r.ServerCPU, r.Window), perCall(r.SelfCPU, r.Calls()), cpuShare(r.SelfCPU, r.Window))
		}
	}
	if r.OtherKnown {
		line += " other-cpu=" + cpuShare(r.OtherCPU, r.Window)
	}
	if r.Transport != transportHTTP {
		line += fmt.Sprintf(" pushes/s=%s connect=%s", thousands(float64(r.Pushes)/r.Window.Seconds()), r.Connect.Round(time.Millisecond))
	}
	fmt.Fprintln(w, line)
}

func printResults(w io.Writer, results []result, inProcess bool) {
	if len(results) == 0 {
		return
	}
	cpuTitle := "server CPU/call"
	if inProcess {
		cpuTitle = "process CPU/call"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\ntransport\tclients\tinflight\tcalls/s\tp50\tp90\tp99\tmax\terrors\t%s\tpushes/s\n", cpuTitle)
	for _, r := range results {
		cpu := "–"
		if r.CPUKnown {
			cpu = perCall(r.ServerCPU, r.Calls())
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Transport, r.Clients, r.InFlight,
			thousands(r.rate()), latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), r.Errors, cpu,
			thousands(float64(r.Pushes)/r.Window.Seconds()))
	}
	tw.Flush()
}

// report is everything the Markdown file shows.
type report struct {
	Machine machine
	Command string
	Date    time.Time
	Config  config
	Mode    string
	Code    string // the commit measured
	Results []result
}

func renderMarkdown(rep report) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := rep.Config
	p("# Benchmarks\n\n")
	p("Measured numbers, not targets. This file is written by the load generator in `tools/loadgen`;\n")
	p("run the command below to measure again (it replaces the file).\n\n")
	p("```sh\n%s\n```\n\n", rep.Command)
	p("Date: %s\n\n", rep.Date.UTC().Format("2006-01-02 15:04 MST"))
	if rep.Code != "" {
		p("Code: %s\n\n", rep.Code)
	}

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s |\n", rep.Machine.CPU)
	p("| Cores | %d — the server and the load generator share them |\n", rep.Machine.Cores)
	p("| Memory | %s |\n", rep.Machine.Memory)
	p("| Go | %s |\n", rep.Machine.Go)
	p("| OS | %s |\n\n", rep.Machine.OS)

	p("## Setup\n\n")
	p("- Operation: `%s` with body `%s`, over HTTP (`POST %s`) and as the socket.io event `%s`.\n", cfg.Op, cfg.Body, opPath(cfg.Op), cfg.Op)
	if cfg.URL == "" {
		p("- Server: %s; a new embedded SQLite database in a temporary directory, 127.0.0.1 on a free port,\n", rep.Mode)
		p("  log level %s, default options otherwise (socket.io: %d calls per socket at most).\n", cfg.ServerLog, max(16, cfg.InFlight))
	} else {
		p("- Server: %s.\n", rep.Mode)
	}
	if cfg.URL != "" && cfg.DataDir == "" && cfg.DatabaseURL == "" {
		p("- Clients: every virtual client uses the token given with -token (one profile), and keeps %d call(s) in flight:\n", cfg.InFlight)
	} else {
		p("- Clients: each virtual client has its own profile (role `%s`) and token, and keeps %d call(s) in flight:\n", cfg.Role, cfg.InFlight)
	}
	p("  it sends the next call as soon as one is answered. One step per row: the clients connect, run %s\n", cfg.Warmup)
	p("  unmeasured, then %s measured; only calls that end inside the measured window count.\n", cfg.Duration)
	p("- HTTP: Go's net/http client, one transport per client, one keep-alive connection per call in flight.\n")
	p("  Every request carries `Authorization: Bearer <token>` and is authenticated by the server.\n")
	p("- socket.io: a raw Engine.IO v4 / Socket.IO v5 client over one websocket per client (handshake with\n")
	p("  `auth: {token}`, `42<id>[event, body]` → `43<id>[{status, body}]`). The server also pushes each call's\n")
	p("  lifecycle events (`<op>.started`, `<op>.completed`) to every socket of the caller's profile; the client\n")
	p("  counts and drops them (pushes/s). In the fan-out table all clients share one profile, so each call is\n")
	p("  pushed to every connected socket.\n")
	p("- calls/s counts answers with status 200; errors are other statuses, timeouts (%s) and broken connections.\n", cfg.Timeout)
	p("  Latency is from sending a call to reading its answer, over the successful calls (nearest-rank percentiles).\n")
	if rep.inProcess() {
		p("- CPU: getrusage of the one process that runs both server and load generator, per call.\n")
	} else {
		p("- CPU: the server's user + system time from `/proc/<pid>/stat` (10 ms ticks) over the measured window,\n")
		p("  divided by the calls answered in it; \"server CPU\" is the same time as a share of one core. The load\n")
		p("  generator's own CPU (getrusage) is shown beside it: both compete for the same %d cores.\n", rep.Machine.Cores)
	}
	p("- The dispatcher alone, in process and without a transport: `go test -run '^$' -bench Dispatch ./internal/dispatch/`.\n")
	p("- Other CPU: the machine's busy time in the window (`/proc/stat`) that neither the server nor the load\n")
	p("  generator used, as a share of one core: other processes competing for the cores. Far from 0 %%, it\n")
	p("  means the row was disturbed.\n")
	p("\n## Results\n")
	for _, tr := range cfg.Transports {
		var rows []result
		for _, r := range rep.Results {
			if r.Transport == tr {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		p("\n### %s\n\n", transportTitles[tr])
		if tr != transportSIOShare && rows[0].Shared {
			p("Every client used the one token given with -token, so these sockets share a profile (fan-out included).\n\n")
		}
		sio := tr != transportHTTP
		header := "| clients | in flight | calls/s | p50 | p90 | p99 | max | errors |"
		sep := "|---:|---:|---:|---:|---:|---:|---:|---|"
		if rep.inProcess() {
			header += " process CPU/call |"
			sep += "---:|"
		} else {
			header += " server CPU/call | server CPU | loadgen CPU/call | loadgen CPU |"
			sep += "---:|---:|---:|---:|"
		}
		if sio {
			header += " pushes/s |"
			sep += "---:|"
		}
		header += " other CPU | server RSS |"
		sep += "---:|---:|"
		p("%s\n%s\n", header, sep)
		for _, r := range rows {
			p("| %d | %d | %s | %s | %s | %s | %s | %s |", r.Clients, r.InFlight, thousands(r.rate()),
				latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), errorsText(r))
			switch {
			case !r.CPUKnown && rep.inProcess():
				p(" – |")
			case !r.CPUKnown:
				p(" – | – | – | – |")
			case rep.inProcess():
				p(" %s |", perCall(r.ServerCPU, r.Calls()))
			default:
				p(" %s | %s | %s | %s |", perCall(r.ServerCPU, r.Calls()), cpuShare(r.ServerCPU, r.Window),
					perCall(r.SelfCPU, r.Calls()), cpuShare(r.SelfCPU, r.Window))
			}
			if sio {
				p(" %s |", thousands(float64(r.Pushes)/r.Window.Seconds()))
			}
			if r.OtherKnown {
				p(" %s |", cpuShare(r.OtherCPU, r.Window))
			} else {
				p(" – |")
			}
			if r.ServerRSS > 0 {
				p(" %.0f MB |", float64(r.ServerRSS)/1e6)
			} else {
				p(" – |")
			}
			p("\n")
		}
	}
	return b.Bytes()
}

func (rep report) inProcess() bool { return rep.Config.InProcess }

// opPath is the HTTP path of an operation.
func opPath(id string) string {
	if op, ok := gen.OperationByID(id); ok {
		return op.Path
	}
	return "?"
}
