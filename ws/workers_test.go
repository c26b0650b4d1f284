package ws

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goid is the id of the calling goroutine, from its stack's first line.
func goid() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	return id
}

// runOn runs a job on w and returns the goroutine it ran on, once it has run.
func runOn(w *workers) uint64 {
	got := make(chan uint64)
	w.run(func() { got <- goid() })
	return <-got
}

// A call never waits for another: calls that are all running at once each get a goroutine.
func TestWorkersNeverQueueACallBehindAnother(t *testing.T) {
	w := newWorkers(time.Minute)
	runOn(w) // an idle worker, which takes one of them
	const n = 32
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		w.run(func() {
			started.Done()
			<-release
		})
	}
	done := make(chan struct{})
	go func() { started.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the calls did not all start while the others ran: one waits behind another")
	}
	close(release)
}

// A worker runs the next call on the same goroutine, with its grown stack, and ends once it
// has waited its idle time for one.
func TestWorkersReuseTheirGoroutineUntilIdle(t *testing.T) {
	w := newWorkers(300 * time.Millisecond)
	first := runOn(w)
	time.Sleep(20 * time.Millisecond) // the worker is back waiting
	if again := runOn(w); again != first {
		t.Fatalf("the next call ran on goroutine %d, not on the idle worker %d", again, first)
	}
	time.Sleep(time.Second) // past the idle time: the worker has ended
	if later := runOn(w); later == first {
		t.Fatalf("a call after the idle time ran on the worker %d, which should have ended", first)
	}
}
