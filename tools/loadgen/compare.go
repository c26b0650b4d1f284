package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// The report compares glow with the anchors measured in the same run: for each shape,
// glow's rate as a ratio of the anchor's, against a target. The targets are goals written
// next to the ratios, not assertions.

// comparisonTargets are the shapes compared, in the report's order: glow's steps of a
// transport against an anchor's steps of the same shape, and the ratio glow aims at.
var comparisonTargets = []struct {
	transport, anchor string
	ratio             float64
	p99               bool // glow's p99 also aims to be no worse than the anchor's
}{
	{transportSIO, anchorNodeContract, 1.0, true},
	{transportSIO, anchorNodeEcho, 0.5, false},
	{transportSIOShare, anchorNodeContract, 1.0, false},
	{transportHTTP, anchorGoEcho, 0.5, false},
	{transportChat, anchorNodeEcho, 1.0, false},
}

// comparison is one shape measured on glow and on an anchor.
type comparison struct {
	Shape            string
	Anchor           string
	Unit             string  // "calls/s" or "frames/s"
	Glow, Base       float64 // the rates of glow and of the anchor
	GlowP99, BaseP99 time.Duration
	GlowCPU, BaseCPU string // server CPU per call or per frame
	Target           float64
	P99              bool
}

// ratio is glow's rate over the anchor's; 0 when the anchor's is 0.
func (c comparison) ratio() float64 {
	if c.Base <= 0 {
		return 0
	}
	return c.Glow / c.Base
}

// met says whether glow reached the target.
func (c comparison) met() bool {
	return c.Base > 0 && c.ratio() >= c.Target && (!c.P99 || (c.GlowP99 > 0 && c.GlowP99 <= c.BaseP99))
}

func (c comparison) targetText() string {
	t := fmt.Sprintf("≥ %.1f×", c.Target)
	if c.P99 {
		t += ", p99 ≤ the anchor's"
	}
	return t
}

func (c comparison) metText() string {
	if c.met() {
		return "yes"
	}
	return "no"
}

// ratioText is glow's rate as a multiple of the anchor's, "–" when there is none.
func ratioText(glow, base float64) string {
	if base <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", glow/base)
}

// compare pairs glow's steps with the anchors' of the same shape: the -anchor-clients steps
// of each transport, and the chat fan-out to -anchor-watchers sockets at pace 0. A shape
// missing on either side has no row.
func compare(m measured, cfg config) []comparison {
	var out []comparison
	for _, t := range comparisonTargets {
		c := comparison{Anchor: t.anchor, Target: t.ratio, P99: t.p99}
		if t.transport == transportChat {
			glow, ok1 := findChat(m.Chats, "", cfg.AnchorWatchers)
			base, ok2 := findChat(m.Chats, t.anchor, cfg.AnchorWatchers)
			if !ok1 || !ok2 {
				continue
			}
			c.Shape = fmt.Sprintf("fan-out to %s sockets: glow's chat streamed to its watchers; the anchor's broadcast", thousands(float64(cfg.AnchorWatchers)))
			c.Unit = "frames/s"
			c.Glow, c.Base = glow.perSecond(glow.Delivered), base.perSecond(base.Delivered)
			c.GlowP99, c.BaseP99 = glow.P99, base.P99
			c.GlowCPU, c.BaseCPU = frameCPU(glow), frameCPU(base)
			out = append(out, c)
			continue
		}
		glow, ok1 := findResult(m.Results, "", t.transport, cfg.AnchorClients)
		base, ok2 := findResult(m.Results, t.anchor, t.transport, cfg.AnchorClients)
		if !ok1 || !ok2 {
			continue
		}
		switch t.transport {
		case transportSIO:
			c.Shape = fmt.Sprintf("socket.io: %d sockets × %d in flight, each its own profile", glow.Clients, glow.InFlight)
		case transportSIOShare:
			c.Shape = fmt.Sprintf("socket.io: %d sockets × %d in flight, all one profile", glow.Clients, glow.InFlight)
		case transportHTTP:
			c.Shape = fmt.Sprintf("HTTP: %d keep-alive connections, 1 call in flight each", glow.Clients*glow.InFlight)
		}
		c.Unit = "calls/s"
		c.Glow, c.Base = glow.rate(), base.rate()
		c.GlowP99, c.BaseP99 = glow.P99, base.P99
		c.GlowCPU, c.BaseCPU = callCPU(glow), callCPU(base)
		out = append(out, c)
	}
	return out
}

func findResult(rows []result, anchor, transport string, clients int) (result, bool) {
	for _, r := range rows {
		if r.Anchor == anchor && r.Transport == transport && r.Clients == clients {
			return r, true
		}
	}
	return result{}, false
}

func findChat(rows []chatResult, anchor string, watchers int) (chatResult, bool) {
	for _, r := range rows {
		if r.Anchor == anchor && r.Watchers == watchers && r.Pace == 0 {
			return r, true
		}
	}
	return chatResult{}, false
}

func callCPU(r result) string {
	if !r.CPUKnown {
		return "–"
	}
	return perCall(r.ServerCPU, r.Calls())
}

func frameCPU(r chatResult) string {
	if !r.CPUKnown {
		return "–"
	}
	return perFrame(r.ServerCPU, r.Delivered)
}

// glowResults are the rows measured on glow.
func glowResults(rows []result) []result {
	var out []result
	for _, r := range rows {
		if r.Anchor == "" {
			out = append(out, r)
		}
	}
	return out
}

// glowChats are the chat fan-out rows measured on glow.
func glowChats(rows []chatResult) []chatResult {
	var out []chatResult
	for _, r := range rows {
		if r.Anchor == "" {
			out = append(out, r)
		}
	}
	return out
}

// serverName names the server of a row: glow or the anchor.
func serverName(anchor string) string {
	if anchor == "" {
		return "glow"
	}
	return anchor
}

// printAll prints the tables of everything measured.
func printAll(w io.Writer, got measured, cfg config) {
	printResults(w, got.Results, cfg.InProcess)
	printChatResults(w, got.Chats)
	comps := compare(got, cfg)
	if len(comps) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\nshape\tanchor\tglow\tanchor\tglow/anchor\ttarget\tmet\tglow p99\tanchor p99\n")
		for _, c := range comps {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", c.Shape, c.Anchor, thousands(c.Glow), c.Unit,
				thousands(c.Base), c.Unit, ratioText(c.Glow, c.Base), c.targetText(), c.metText(), latency(c.GlowP99), latency(c.BaseP99))
		}
		tw.Flush()
	}
	if len(got.Idle) > 0 {
		fmt.Fprintln(w)
		for _, r := range got.Idle {
			printIdle(w, r)
		}
		for _, r := range got.Churn {
			printChurn(w, r)
		}
	}
}

func printIdle(w io.Writer, r idleResult) {
	fmt.Fprintf(w, "memory %-13s idle-sockets=%d rss-before=%.0fMB rss-after=%.0fMB per-socket=%.1fkB connect=%s\n",
		r.Server, r.Sockets, float64(r.Before)/1e6, float64(r.After)/1e6, r.perSocket()/1e3, r.Connect.Round(time.Millisecond))
}

// renderComparisons writes the comparison table.
func renderComparisons(b *bytes.Buffer, comps []comparison) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## glow compared with the anchors\n\n")
	p("glow's rates as ratios of the anchors' (section Anchors below), measured in this run, on this machine, by the\n")
	p("same load generator with the same steps. The targets are what glow aims at, not tests.\n\n")
	p("| shape | anchor | glow | anchor | glow ÷ anchor | target | met | glow p99 | anchor p99 | glow CPU | anchor CPU |\n")
	p("|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n")
	for _, c := range comps {
		per := "/call"
		if c.Unit == "frames/s" {
			per = "/frame"
		}
		p("| %s | %s | %s %s | %s %s | %s | %s | %s | %s | %s | %s%s | %s%s |\n", c.Shape, anchorTitles[c.Anchor],
			thousands(c.Glow), c.Unit, thousands(c.Base), c.Unit, ratioText(c.Glow, c.Base), c.targetText(), c.metText(),
			latency(c.GlowP99), latency(c.BaseP99), c.GlowCPU, cpuUnit(c.GlowCPU, per), c.BaseCPU, cpuUnit(c.BaseCPU, per))
	}
	p("\n")
}

// cpuUnit is what follows a CPU cell: per call or per frame, unless the cell is unknown.
func cpuUnit(cell, per string) string {
	if cell == "–" {
		return ""
	}
	return per
}

// renderAnchors writes the anchors' setup and rows.
func renderAnchors(b *bytes.Buffer, rep report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	cfg := rep.Config
	p("\n## Anchors\n\n")
	p("### Setup\n\n")
	p("Servers glow is compared with, all in this repository, driven by the same load generator with the same steps\n")
	p("(warm-up %s, window %s, the same clients and counts) right after glow's steps of the same transport. Each is a\n", cfg.Warmup, cfg.Duration)
	p("process of its own, started by the load generator on a free port of 127.0.0.1 for its step and stopped after it;\n")
	p("its CPU time is read from `/proc/<pid>/stat` and its memory from `/proc`, as glow's.\n\n")
	if rep.Node != "" {
		p("- Node anchors: `bench/node/anchor.mjs` on %s (pinned in `bench/node/package-lock.json`,\n", rep.Node)
		p("  installed with `npm ci --prefix bench/node`), default server options. Node runs the JavaScript on one thread,\n")
		p("  so a Node anchor uses one core at most; glow can use all %d.\n", rep.Machine.Cores)
	}
	for _, a := range cfg.Anchors {
		switch a {
		case anchorNodeEcho:
			p("- %s (`anchor.mjs echo`): every event is acked with its own arguments: no authentication, no rooms,\n", anchorTitles[a])
			p("  no lifecycle events. The load generator checks each ack is `[<body>]`.\n")
			if slices.Contains(cfg.Transports, transportChat) {
				p("  Its broadcast (`anchor.mjs broadcast`) is the chat fan-out's counterpart: one socket sends `broadcast`\n")
				p("  messages back to back (the next at the previous one's ack); each makes the server `io.emit` %d frames\n", broadcastFrames)
				p("  (`attempt.generate.text.progress`, `{topic, seq, delta, run_id}` as glow's deltas, numbered per topic) to every\n")
				p("  connected socket, the sender and %s watchers. The server records when it emitted each frame (Unix µs); the\n", thousands(float64(cfg.AnchorWatchers)))
				p("  load generator reads that record after the step, so the latency is publish → receipt as for glow's chat, and\n")
				p("  the watchers check the numbering the same way.\n")
			}
		case anchorNodeContract:
			p("- %s (`anchor.mjs contract`): glow's socket.io contract without storage or validation.\n", anchorTitles[a])
			p("  The handshake needs `auth: {token: \"Bearer <token>\"}` with a non-empty token, else `connect_error`\n")
			p("  `unauthorized`; the token names the profile (the load generator makes each client's token `<profile id>.<random>`,\n")
			p("  so each client has its own profile, or all share one, as on glow). Every socket joins `profile:<id>`; every\n")
			p("  event is acked with `{status: 200, body}` and pushes `<event>.started` (`{topic, seq, call_id, operation,\n")
			p("  transport, request}`) and `<event>.completed` (`{…, status, body}`) to the profile's room, as glow does. The\n")
			p("  body is glow's own answer to the call (fetched once from glow), with the socket's profile id and session id.\n")
		case anchorGoEcho:
			p("- %s (this binary re-executed): a `net/http` server answering every POST that carries a\n", anchorTitles[a])
			p("  non-empty bearer token with its own body, as `application/json`.\n")
		}
	}
	p("\n### Results\n")
	for _, tr := range cfg.Transports {
		var rows []result
		for _, r := range rep.Results {
			if r.Anchor != "" && r.Transport == tr {
				rows = append(rows, r)
			}
		}
		if len(rows) > 0 {
			p("\n#### %s\n\n", transportTitles[tr])
			renderOpTable(b, rows, false, true)
		}
		if tr != transportChat {
			continue
		}
		var chats []chatResult
		for _, r := range rep.Chats {
			if r.Anchor != "" {
				chats = append(chats, r)
			}
		}
		if len(chats) > 0 {
			p("\n#### The chat fan-out's counterpart: the broadcast of %s\n\n", anchorTitles[anchorNodeEcho])
			renderChatTable(b, chats, false, true)
		}
	}
}

// renderIdle writes the memory section.
func renderIdle(b *bytes.Buffer, rep report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("\n## Memory: idle sockets\n\n")
	p("- glow: a new server, as above but with nothing run on it before, and %s profiles with a token each made\n", thousands(float64(rep.Config.IdleSockets)))
	p("  before it starts serving. After %s, its resident memory (VmRSS, `/proc/<pid>/status`) is read; then the\n", idleSettle)
	p("  load generator connects %s sockets (websocket, the handshake's `auth` with each its own profile's token), lets\n", thousands(float64(rep.Config.IdleSockets)))
	p("  them idle %s and reads VmRSS again. Per idle socket: the difference over the sockets. It counts everything the\n", idleSettle)
	p("  sockets made the process keep: buffers, goroutines, rooms, and garbage of the handshakes not yet given back.\n")
	if len(rep.Idle) > 1 {
		p("- The same for %s, each socket in its own profile's room.\n", anchorTitles[anchorNodeContract])
	}
	p("\n| server | idle sockets | RSS before | RSS after | per idle socket | connect |\n")
	p("|---|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Idle {
		name := "glow"
		if r.Server != "glow" {
			name = anchorTitles[r.Server]
			if r.Version != "" {
				name += " (" + r.Version + ")"
			}
		}
		p("| %s | %s | %.0f MB | %.0f MB | %.1f kB | %s |\n", name, thousands(float64(r.Sockets)),
			float64(r.Before)/1e6, float64(r.After)/1e6, r.perSocket()/1e3, r.Connect.Round(time.Millisecond))
	}
}
