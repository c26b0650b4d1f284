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
// files other than report (the file being rewritten, whose last version does not change
// what is measured); "" outside a git checkout.
func codeVersion(report string) string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	v := "commit " + strings.TrimSpace(string(out))
	args := []string{"status", "--porcelain", "--untracked-files=no", "--", "."}
	if report != "" {
		args = append(args, ":(exclude)"+report)
	}
	if st, err := exec.Command("git", args...).Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
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
	line := fmt.Sprintf("%-29s clients=%-4d inflight=%-2d calls/s=%-8s p50=%-9s p90=%-9s p99=%-9s max=%-9s errors=%s",
		r.label(), r.Clients, r.InFlight, thousands(r.rate()), latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), errorsText(r))
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
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.label(), r.Clients, r.InFlight,
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
	measured
}

func renderMarkdown(rep report) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
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

	comps := compare(rep.measured, rep.Config)
	if len(comps) > 0 {
		renderComparisons(&b, comps)
	}
	if len(glowResults(rep.Results)) > 0 {
		renderOps(&b, rep)
	}
	if len(glowChats(rep.Chats)) > 0 {
		renderChats(&b, rep)
	}
	if len(rep.Config.Anchors) > 0 {
		renderAnchors(&b, rep)
	}
	if len(rep.Idle) > 0 {
		renderIdle(&b, rep)
		renderChurn(&b, rep)
	}
	return b.Bytes()
}

// renderOps writes the setup and the tables of the operation steps.
func renderOps(b *bytes.Buffer, rep report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	cfg := rep.Config
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
		if tr == transportChat {
			continue
		}
		var rows []result
		for _, r := range glowResults(rep.Results) {
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
		renderOpTable(b, rows, rep.inProcess(), false)
	}
}

// renderOpTable writes the rows of operation steps of one transport; named adds a first
// column naming each row's anchor.
func renderOpTable(b *bytes.Buffer, rows []result, inProcess, named bool) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	sio := rows[0].Transport != transportHTTP
	header := "| clients | in flight | calls/s | p50 | p90 | p99 | max | errors |"
	sep := "|---:|---:|---:|---:|---:|---:|---:|---|"
	if named {
		header = "| anchor " + header
		sep = "|---" + sep
	}
	if inProcess {
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
		if named {
			p("| %s ", anchorTitles[r.Anchor])
		}
		p("| %d | %d | %s | %s | %s | %s | %s | %s |", r.Clients, r.InFlight, thousands(r.rate()),
			latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), errorsText(r))
		switch {
		case !r.CPUKnown && inProcess:
			p(" – |")
		case !r.CPUKnown:
			p(" – | – | – | – |")
		case inProcess:
			p(" %s |", perCall(r.ServerCPU, r.Calls()))
		default:
			p(" %s | %s | %s | %s |", perCall(r.ServerCPU, r.Calls()), cpuShare(r.ServerCPU, r.Window),
				perCall(r.SelfCPU, r.Calls()), cpuShare(r.SelfCPU, r.Window))
		}
		if sio {
			p(" %s |", thousands(float64(r.Pushes)/r.Window.Seconds()))
		}
		p("%s", otherAndRSSCells(r.cpuUsage, r.ServerRSS, r.Window))
		p("\n")
	}
}

func (rep report) inProcess() bool { return rep.Config.InProcess }

// opPath is the HTTP path of an operation.
func opPath(id string) string {
	if op, ok := gen.OperationByID(id); ok {
		return op.Path
	}
	return "?"
}

// paceText is a chat step's pace for the tables.
func paceText(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func drainText(r chatResult) string {
	switch {
	case !r.Drained:
		return fmt.Sprintf("> %s (%s events missing)", max(r.Timeout, 10*time.Second), thousands(float64(r.Behind)))
	case r.Drain <= 0:
		return "0"
	}
	return latency(r.Drain)
}

func gapsText(r chatResult) string {
	if r.Disorder == 0 {
		return strconv.FormatInt(r.Lost, 10)
	}
	return fmt.Sprintf("%d (+%d repeated or out of order)", r.Lost, r.Disorder)
}

func (r chatResult) deltasPerReply() string {
	if r.AllReplies == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(r.AllDeltas)/float64(r.AllReplies))
}

func chatErrorsText(r chatResult) string {
	return errorsText(result{OK: r.Replies, Errors: r.Errors, ErrKinds: r.ErrKinds})
}

// perFrame is CPU time per delivered delta.
func perFrame(d time.Duration, frames int64) string {
	if frames == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f µs", float64(d.Nanoseconds())/1000/float64(frames))
}

func printChatStep(w io.Writer, r chatResult) {
	line := fmt.Sprintf("%-29s watchers=%-4d pace=%-6s replies/s=%-6.1f deltas/s=%-7s frames/s=%-9s p50=%-9s p90=%-9s p99=%-9s max=%-9s spread-p99=%-9s gaps=%s drain=%s errors=%s",
		r.label(), r.Watchers, paceText(r.Pace), r.perSecond(r.Replies), thousands(r.perSecond(r.Published)), thousands(r.perSecond(r.Delivered)),
		latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max), latency(r.Spread99), gapsText(r), drainText(r), chatErrorsText(r))
	if r.CPUKnown {
		line += fmt.Sprintf(" server-cpu/frame=%s (%s) loadgen-cpu=%s", perFrame(r.ServerCPU, r.Delivered), cpuShare(r.ServerCPU, r.Window), cpuShare(r.SelfCPU, r.Window))
	}
	if r.OtherKnown {
		line += " other-cpu=" + cpuShare(r.OtherCPU, r.Window)
	}
	line += fmt.Sprintf(" reply-p50=%s rss=%.0fMB deltas/reply=%s chat-messages=%d connect=%s samples=%d", latency(r.ReplyP50), float64(r.ServerRSS)/1e6, r.deltasPerReply(), 2*r.AllReplies, r.Connect.Round(time.Millisecond), r.Samples)
	fmt.Fprintln(w, line)
}

func printChatResults(w io.Writer, results []chatResult) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\nserver\twatchers\tpace\treplies/s\tdeltas/s\tframes/s\tp50\tp90\tp99\tmax\tgaps\tdrain\tserver CPU/frame\n")
	for _, r := range results {
		cpu := "–"
		if r.CPUKnown {
			cpu = perFrame(r.ServerCPU, r.Delivered)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", serverName(r.Anchor), r.Watchers, paceText(r.Pace), r.perSecond(r.Replies),
			thousands(r.perSecond(r.Published)), thousands(r.perSecond(r.Delivered)), latency(r.P50), latency(r.P90), latency(r.P99),
			latency(r.Max), gapsText(r), drainText(r), cpu)
	}
	tw.Flush()
}

// renderChats writes the chat fan-out section.
func renderChats(b *bytes.Buffer, rep report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	cfg := rep.Config
	p("\n## %s\n\n", transportTitles[transportChat])
	p("### Setup\n\n")
	switch {
	case cfg.URL == "" && len(glowResults(rep.Results)) > 0:
		p("- Server: as above, but one of its own for this section, on a new database (the rows above leave a large heap,\n")
		p("  millions of stored events and socket.io's recovery buffers behind them); `LocalTokenDelay` %s.\n", cfg.TokenDelay)
	case cfg.URL == "":
		p("- Server: %s; a new embedded SQLite database in a temporary directory, log level %s, `LocalTokenDelay` %s.\n",
			rep.Mode, cfg.ServerLog, cfg.TokenDelay)
	default:
		p("- Server: %s.\n", rep.Mode)
	}
	p("- The chat: the admin creates a persona; for each row, the chat's owner (a profile with role `%s`) starts a new attempt\n", cfg.Role)
	p("  (`attempt.start`: a new chat, and a new topic `attempt/<id>`) and sends chat messages over one socket.io connection\n")
	p("  (`attempt.chat_message`), back to back: the next one as soon as the reply to the previous one ended, i.e. as soon as\n")
	p("  its `attempt.generate.completed` reached the owner's socket. One message in flight at a time (the server generates\n")
	p("  the replies of a chat one at a time anyway). The chat grows during the row: every reply's model request holds the\n")
	p("  whole history (chat messages, at the end of the row, in the table).\n")
	p("- Watchers: N more sockets, each of its own profile with role `admin` (level 0, which may follow any attempt), follow\n")
	p("  the attempt's topic with `system.subscribe` (`{topics: [{topic: \"attempt/<id>\"}]}`) before the first message. They get\n")
	p("  the attempt's events (`attempt.generate.started`, `.text.progress`, `.progress`, `.completed`, `attempt.chat.message`)\n")
	p("  and nothing of the owner's calls: an observer's view. (N sockets of the owner's own profile would also get every\n")
	p("  call's lifecycle events, and one profile's sockets are the `socketio-shared` rows above.) The owner's socket gets the\n")
	p("  same events through its profile's room, so N + 1 sockets receive every delta.\n")
	p("- Pace: each row sets the pause between streamed words on the default (local) model, `model.update` with\n")
	p("  `token_delay_ms`, which the runner uses instead of the server's `LocalTokenDelay`. Pace 0 is no pause at all: the\n")
	p("  server, not the model, is the limit. (`LocalTokenDelay` itself cannot say \"no pause\": the runner reads 0 as its\n")
	p("  30 ms default.) The embedded model streams a word per delta; deltas/reply is measured over the row.\n")
	p("- One row: the watchers connect and subscribe, the owner sends for %s unmeasured, then %s measured; then it\n", cfg.Warmup, cfg.Duration)
	p("  finishes the reply in progress and stops, and the watchers get what they still miss.\n")
	p("- replies/s: replies whose completed event reached the owner's socket in the window. deltas/s: deltas the server\n")
	p("  published in the window (by their time in the event log). frames/s: deltas received in the window by all the\n")
	p("  watchers together (the owner's socket not counted).\n")
	p("- Latency: from the server publishing a delta to a watcher starting to read it. The publish time is the event's\n")
	p("  `created_at` in the server's event log (taken when the runner publishes the delta, before the event is stored and\n")
	p("  delivered; microseconds), read from the server's database after the row; the receipt time is the load generator's\n")
	p("  clock when its read loop gets to the websocket message. Both are the same machine's wall clock, so there is no skew\n")
	p("  between them. The latency thus covers storing the event (the event log's batched transaction), socket.io's broadcast,\n")
	p("  the websocket write, the kernel and the load generator's own scheduling (on the %d shared cores, a busy load\n", rep.Machine.Cores)
	p("  generator adds to it). Percentiles over every delta every watcher received in the window (nearest rank; at most\n")
	p("  %s samples per row).\n", thousands(maxSamples))
	p("- Spread: a watcher's receipt minus the first receipt of the same delta by any watcher: the fan-out's own share of the\n")
	p("  latency, with no clock but the load generator's.\n")
	p("- Gaps: each watcher checks the topic's numbering (`seq`): every event once, in order. Gaps count events a watcher\n")
	p("  never received. Drain: from the last reply's end at the owner's socket until the last watcher had the topic's last\n")
	p("  event: how far behind the delivery was when the owner stopped.\n")
	p("- CPU: as above, over the window; per frame is the server's CPU time divided by the frames delivered to the watchers.\n")
	p("\n### Results\n\n")
	renderChatTable(b, glowChats(rep.Chats), rep.inProcess(), false)
	var notes []string
	for _, r := range glowChats(rep.Chats) {
		if !r.LatKnown {
			notes = append(notes, "The server's database was not known, so publish times (latency) are missing and deltas/s was counted at the owner's socket.")
			break
		}
	}
	for _, r := range glowChats(rep.Chats) {
		if r.SharedWatcher {
			notes = append(notes, "The watchers used the token given with -token: they share one profile.")
			break
		}
	}
	for _, n := range notes {
		p("\n%s\n", n)
	}
}

// renderChatTable writes the rows of chat fan-out steps: glow's chat, or the broadcast
// anchor's (its messages are broadcasts, its deltas frames, and it has no chat).
func renderChatTable(b *bytes.Buffer, rows []chatResult, inProcess, broadcast bool) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	header := "| watchers | pace | replies/s | deltas/reply | deltas/s | frames/s |"
	last := " chat messages |"
	if broadcast {
		header = "| watchers | pace | broadcasts/s | frames/broadcast | frames sent/s | frames/s |"
		last = " broadcasts |"
	}
	header += " p50 | p90 | p99 | max | spread p50 | spread p99 | gaps | drain | errors |"
	sep := "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
	if inProcess {
		header += " process CPU/frame |"
		sep += "---:|"
	} else {
		header += " server CPU/frame | server CPU | loadgen CPU |"
		sep += "---:|---:|---:|"
	}
	header += " other CPU | server RSS |" + last
	sep += "---:|---:|---:|"
	p("%s\n%s\n", header, sep)
	for _, r := range rows {
		p("| %d | %s | %.1f | %s | %s | %s |", r.Watchers, paceText(r.Pace), r.perSecond(r.Replies), r.deltasPerReply(),
			thousands(r.perSecond(r.Published)), thousands(r.perSecond(r.Delivered)))
		p(" %s | %s | %s | %s |", latency(r.P50), latency(r.P90), latency(r.P99), latency(r.Max))
		if r.Watchers > 1 {
			p(" %s | %s |", latency(r.Spread50), latency(r.Spread99))
		} else {
			p(" – | – |")
		}
		p(" %s | %s | %s |", gapsText(r), drainText(r), chatErrorsText(r))
		switch {
		case !r.CPUKnown && inProcess:
			p(" – |")
		case !r.CPUKnown:
			p(" – | – | – |")
		case inProcess:
			p(" %s |", perFrame(r.ServerCPU, r.Delivered))
		default:
			p(" %s | %s | %s |", perFrame(r.ServerCPU, r.Delivered), cpuShare(r.ServerCPU, r.Window), cpuShare(r.SelfCPU, r.Window))
		}
		p("%s", otherAndRSSCells(r.cpuUsage, r.ServerRSS, r.Window))
		if broadcast {
			p(" %s |\n", thousands(float64(r.AllReplies)))
		} else {
			p(" %s |\n", thousands(float64(2*r.AllReplies)))
		}
	}
}

// otherAndRSSCells are a table row's cells for the other processes' CPU share and the
// server's memory, "–" where unknown.
func otherAndRSSCells(cpu cpuUsage, rss int64, window time.Duration) string {
	other, mem := " – |", " – |"
	if cpu.OtherKnown {
		other = " " + cpuShare(cpu.OtherCPU, window) + " |"
	}
	if rss > 0 {
		mem = fmt.Sprintf(" %.0f MB |", float64(rss)/1e6)
	}
	return other + mem
}
