package ws

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// boundWrites bounds every write to a client by the write timeout: each websocket frame, and
// each long-polling response. A client that stops reading is disconnected once a write to it
// has waited that long, which also releases the goroutine that was writing.
func (s *Server) boundWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(&deadlineHijacker{ResponseWriter: w, timeout: s.opts.WriteTimeout}, r)
			return
		}
		// A long-polling GET is held until there is something to send, at the latest the
		// next ping; then the response must be written within the write timeout.
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.PingInterval + s.opts.WriteTimeout))
		defer rc.SetWriteDeadline(time.Time{}) // the connection may serve further requests
		next.ServeHTTP(w, r)
	})
}

// deadlineHijacker hands the websocket upgrader a connection whose writes time out.
type deadlineHijacker struct {
	http.ResponseWriter
	timeout time.Duration
}

func (h *deadlineHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The socket.io library keeps this writer for the socket's life, and net/http's response
	// keeps its server connection, with that connection's 4 KiB read and write buffers, which
	// a hijacked connection never gives back. The connection is the websocket's now: forget
	// the response, so that they are freed.
	h.ResponseWriter = hijacked{header: h.Header()}
	return &deadlineConn{Conn: c, timeout: h.timeout}, brw, nil
}

// hijacked is what a response writer is after its connection was hijacked: a Write fails
// with http.ErrHijacked, as net/http's own does.
type hijacked struct{ header http.Header }

func (w hijacked) Header() http.Header     { return w.header }
func (hijacked) Write([]byte) (int, error) { return 0, http.ErrHijacked }
func (hijacked) WriteHeader(int)           {}

func (h *deadlineHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// deadlineConn sets a write deadline before every write. (The websocket library clears the
// deadline before each frame it writes; this sets it again, after.)
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
