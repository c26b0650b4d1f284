package ws

import (
	"net/http"
	"net/http/httptest"
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
