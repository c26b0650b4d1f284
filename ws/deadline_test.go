package ws

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// After the upgrade, the writer the socket.io library keeps no longer leads to net/http's
// response (and through it to the hijacked connection's buffers).
func TestUpgradedWriterForgetsTheResponse(t *testing.T) {
	kept := make(chan http.ResponseWriter, 1)
	s := &Server{opts: Options{WriteTimeout: time.Second, PingInterval: time.Second}}
	srv := httptest.NewServer(s.boundWrites(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Error(err)
			kept <- nil
			return
		}
		defer c.Close()
		kept <- w.(*deadlineHijacker).ResponseWriter
		if _, ok := c.NetConn().(*deadlineConn); !ok {
			t.Errorf("the websocket writes to %T, not a deadlineConn", c.NetConn())
		}
	})))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := <-kept
	if _, ok := w.(hijacked); !ok {
		t.Fatalf("after the upgrade the library keeps %T", w)
	}
	if _, err := w.Write([]byte("x")); err != http.ErrHijacked {
		t.Fatalf("Write after the upgrade: %v, want http.ErrHijacked", err)
	}
}

// writeCounter is a connection that records its writes.
type writeCounter struct {
	net.Conn
	writes []string
	fail   error
	closed bool
}

func (w *writeCounter) Write(p []byte) (int, error) {
	if w.fail != nil {
		return 0, w.fail
	}
	w.writes = append(w.writes, string(p))
	return len(p), nil
}
func (w *writeCounter) SetWriteDeadline(time.Time) error { return nil }
func (w *writeCounter) Close() error                     { w.closed = true; return nil }

// The frames written while a batch is corked go out in one write, when it is uncorked;
// frames outside a batch go out at once; a failed write of a batch fails what follows.
func TestCorkedFramesGoOutInOneWrite(t *testing.T) {
	under := &writeCounter{}
	c := &deadlineConn{Conn: under, timeout: time.Second}
	c.cork()
	for _, frame := range []string{"ack", "started", "completed"} {
		if n, err := c.Write([]byte(frame)); n != len(frame) || err != nil {
			t.Fatalf("corked Write = %d, %v", n, err)
		}
	}
	if len(under.writes) != 0 {
		t.Fatalf("corked frames were written: %q", under.writes)
	}
	c.uncork()
	c.uncork() // nothing held: nothing written
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ackstartedcompleted", "ping"}; !slices.Equal(under.writes, want) {
		t.Fatalf("writes %q, want %q", under.writes, want)
	}

	under.fail = errors.New("broken pipe")
	c.cork()
	_, _ = c.Write([]byte("lost"))
	c.uncork()
	under.fail = nil
	if _, err := c.Write([]byte("after")); err == nil || !under.closed {
		t.Fatalf("a write after a failed batch: %v (connection closed: %v)", err, under.closed)
	}
}
