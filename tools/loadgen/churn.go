package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Memory under churn: what connect/close cycles and a long run of calls leave in a glow
// server's resident memory. Both run on the memory measurement's server, after its idle
// sockets have closed.

const (
	cycleRound  = 2000 // sockets connected at once, then closed, per round of cycles
	churnCalls  = 100  // sockets making the calls, each its own profile, 1 call in flight
	maxCycles   = 100000
	maxMemCalls = 10000000
)

// The memory targets glow aims at, beside the idle sockets' (report only).
const (
	idleTarget   = 35e3  // bytes of RSS per idle socket
	cycleTarget  = 20e6  // bytes of RSS above the warm baseline after the cycles
	callsTarget  = 400e6 // bytes of RSS after the calls
	idleTargetAt = 5000  // sockets the idle target is stated for
)

// churnResult is what the cycles and the calls left.
type churnResult struct {
	Cycles            int
	Warm, AfterCycles int64 // VmRSS after the first round and after the last, each settled
	CyclesTook        time.Duration

	Calls, CallErrors int64
	CallsTook         time.Duration
	AfterCalls        int64 // VmRSS as the last call is answered
	AfterCallsSettled int64 // and once the callers have closed and the server settled
}

// growth is how far the cycles took RSS above the warm baseline.
func (r churnResult) growth() int64 { return r.AfterCycles - r.Warm }

// measureChurn runs cycles connect/close cycles in rounds of cycleRound (the first round
// warms the server up and gives the baseline), then calls socket.io calls of op from
// churnCalls sockets. A zero count skips its part.
func measureChurn(ctx context.Context, tgt *target, cycles int, calls int64, op string, body []byte,
	settleFor, timeout time.Duration) (churnResult, error) {
	res := churnResult{Cycles: cycles, Calls: calls}
	rss := func(into *int64) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settleFor):
		}
		var err error
		*into, err = procVmRSS(tgt.pid)
		return err
	}
	if cycles > 0 {
		tokens, _ := clientTokens(tgt, min(cycleRound, cycles), false)
		for done := 0; done < cycles; {
			n := min(len(tokens), cycles-done)
			start := time.Now()
			conns, err := dialAll(ctx, tgt.URL, tokens[:n], timeout)
			if err != nil {
				return res, fmt.Errorf("cycles %d–%d: %w", done+1, done+n, err)
			}
			closeAll(conns)
			res.CyclesTook += time.Since(start)
			if done == 0 {
				if err := rss(&res.Warm); err != nil {
					return res, err
				}
			}
			done += n
		}
		if err := rss(&res.AfterCycles); err != nil {
			return res, err
		}
	}
	if calls > 0 {
		if err := runCalls(ctx, tgt, &res, op, body, timeout); err != nil {
			return res, err
		}
		if err := rss(&res.AfterCallsSettled); err != nil {
			return res, err
		}
	}
	return res, nil
}

// runCalls makes res.Calls calls from churnCalls sockets, as fast as they are answered,
// and reads VmRSS as the last is answered.
func runCalls(ctx context.Context, tgt *target, res *churnResult, op string, body []byte, timeout time.Duration) error {
	tokens, _ := clientTokens(tgt, churnCalls, false)
	conns, err := dialAll(ctx, tgt.URL, tokens, timeout)
	if err != nil {
		return fmt.Errorf("the callers: %w", err)
	}
	defer closeAll(conns)
	var started, failed atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		call := sioCaller(c, op, body, timeout)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for started.Add(1) <= res.Calls && ctx.Err() == nil {
				if err := call(ctx); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
					if errors.Is(err, errClosed) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	res.CallsTook = time.Since(start)
	res.CallErrors = failed.Load()
	if res.AfterCalls, err = procVmRSS(tgt.pid); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.CallErrors > res.Calls/100 {
		return fmt.Errorf("%d of %d calls failed; first: %w", res.CallErrors, res.Calls, first)
	}
	return nil
}

func printChurn(w io.Writer, r churnResult) {
	if r.Cycles > 0 {
		fmt.Fprintf(w, "memory glow          cycles=%d rss-warm=%.0fMB rss-after=%.0fMB growth=%.1fMB took=%s\n",
			r.Cycles, float64(r.Warm)/1e6, float64(r.AfterCycles)/1e6, float64(r.growth())/1e6, r.CyclesTook.Round(time.Millisecond))
	}
	if r.Calls > 0 {
		fmt.Fprintf(w, "memory glow          calls=%d errors=%d rss-at-end=%.0fMB rss-settled=%.0fMB took=%s\n",
			r.Calls, r.CallErrors, float64(r.AfterCalls)/1e6, float64(r.AfterCallsSettled)/1e6, r.CallsTook.Round(time.Millisecond))
	}
}

// renderChurn writes the memory targets and the churn's section.
func renderChurn(b *bytes.Buffer, rep report) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	p("\n## Memory: targets\n\n")
	p("| measure | glow | target | met |\n|---|---:|---|---|\n")
	for _, r := range rep.Idle {
		if r.Server == "glow" {
			p("| RSS per idle socket, %s open | %.1f kB | ≤ %.0f kB with %s open | %s |\n", thousands(float64(r.Sockets)),
				r.perSocket()/1e3, idleTarget/1e3, thousands(idleTargetAt), met(r.Sockets >= idleTargetAt && r.perSocket() <= idleTarget))
		}
	}
	for _, r := range rep.Churn {
		if r.Cycles > 0 {
			p("| RSS above the warm baseline after %s connect/close cycles | %.1f MB | ≤ %.0f MB | %s |\n", thousands(float64(r.Cycles)),
				float64(r.growth())/1e6, cycleTarget/1e6, met(r.growth() <= cycleTarget))
		}
		if r.Calls > 0 {
			p("| RSS after %s socket.io calls | %.0f MB | < %.0f MB | %s |\n", thousands(float64(r.Calls)),
				float64(r.AfterCalls)/1e6, callsTarget/1e6, met(r.AfterCalls < callsTarget && r.CallErrors == 0))
		}
	}
	if len(rep.Churn) == 0 {
		return
	}
	r := rep.Churn[0]
	p("\n## Memory: churn\n\n")
	p("On the idle sockets' glow server, after they have closed.\n\n")
	if r.Cycles > 0 {
		p("- Cycles: rounds of %s sockets (each its own profile, websocket), all connected, then all closed, %s cycles\n", thousands(cycleRound), thousands(float64(r.Cycles)))
		p("  in all. The warm baseline is VmRSS %s after the first round; the last reading %s after the last.\n", idleSettle, idleSettle)
	}
	if r.Calls > 0 {
		p("- Calls: %s sockets, each its own profile, 1 call in flight each, `%s` until %s calls are answered;\n", thousands(churnCalls), rep.Config.Op, thousands(float64(r.Calls)))
		p("  VmRSS as the last is answered, and %s after the sockets have closed.\n", idleSettle)
	}
	p("\n| cycles | warm baseline | after | growth | took | calls | errors | RSS at the end | settled | took |\n")
	p("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| %s | %.0f MB | %.0f MB | %.1f MB | %s | %s | %d | %.0f MB | %.0f MB | %s |\n", thousands(float64(r.Cycles)),
		float64(r.Warm)/1e6, float64(r.AfterCycles)/1e6, float64(r.growth())/1e6, r.CyclesTook.Round(time.Second),
		thousands(float64(r.Calls)), r.CallErrors, float64(r.AfterCalls)/1e6, float64(r.AfterCallsSettled)/1e6, r.CallsTook.Round(time.Second))
}
