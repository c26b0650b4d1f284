package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// boundWrites bounds every write to a client by the write timeout: each websocket frame, and
// each long-polling response. A client that stops reading is disconnected once a write to it
// has waited that long, which also releases the goroutine that was writing.
func (s *Server) boundWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			next.ServeHTTP(&deadlineHijacker{ResponseWriter: w, timeout: s.opts.WriteTimeout,
				upgrades: &s.upgrades, sid: r.URL.Query().Get("sid")}, r)
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
	// A websocket that upgrades a long-polling connection is registered under its engine.io
	// session id, for coalesce to find, until it closes.
	upgrades *sync.Map // sid → *deadlineConn
	sid      string
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
	dc := &deadlineConn{Conn: c, timeout: h.timeout}
	if h.sid != "" && h.upgrades != nil {
		h.upgrades.Store(h.sid, dc)
		dc.closed = func() { h.upgrades.CompareAndDelete(h.sid, dc) }
	}
	return dc, brw, nil
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
//
// It also gathers the frames of one batch into one write (coalesce): the engine hands its
// transport the packets waiting for a socket as a batch, and the websocket transport writes
// them one frame after another, each with a write of its own. A call's ack and its
// lifecycle events often go out together, so that was two or three system calls where one
// does.
type deadlineConn struct {
	net.Conn
	timeout time.Duration

	mu      sync.Mutex
	corked  bool    // a batch is being written: hold its frames
	pending *[]byte // the held frames, from batchBuffers
	failed  error   // the write of held frames failed: so does every later write
	closed  func()  // run by Close, when set
}

func (c *deadlineConn) Close() error {
	if c.closed != nil {
		c.closed()
	}
	return c.Conn.Close()
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return 0, c.failed
	}
	if c.corked {
		if c.pending == nil {
			c.pending = batchBuffers.Get().(*[]byte)
		}
		*c.pending = append(*c.pending, p...)
		return len(p), nil
	}
	return c.write(p)
}

// write writes p within the write timeout; c.mu is held.
func (c *deadlineConn) write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// cork holds the frames written from now on, until uncork.
func (c *deadlineConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes the held frames at once. A failed write closes the connection, which the
// websocket's reader then reports as the transport's close.
func (c *deadlineConn) uncork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.pending == nil {
		return
	}
	buf := c.pending
	c.pending = nil
	if len(*buf) > 0 && c.failed == nil {
		if _, err := c.write(*buf); err != nil {
			c.failed = err
			_ = c.Conn.Close()
		}
	}
	if cap(*buf) <= maxBatchBuffer {
		*buf = (*buf)[:0]
		batchBuffers.Put(buf)
	}
}

// batchBuffers are the buffers of the batches being gathered: an idle socket holds none.
var batchBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxBatchBuffer is the largest buffer given back to batchBuffers.
const maxBatchBuffer = 64 << 10

// coalesce gathers the frames of each batch the engine sends to sock's websocket into one
// write: from the start, or once the connection has upgraded from long-polling. The engine's
// "flush" comes just before it hands a batch to the transport, and the websocket transport's
// "drain" when it has written the batch (or failed to): nothing else is sent to the
// transport in between.
func (s *Server) coalesce(sock *socket.Socket) {
	eng := sock.Conn()
	wire := func(c *deadlineConn, tr interface {
		On(types.EventName, ...types.EventListener) error
	}) {
		_ = eng.On("flush", func(...any) { c.cork() })
		_ = tr.On("drain", func(...any) { c.uncork() })
	}
	if tr := eng.Transport(); tr != nil && tr.Name() == "websocket" {
		if ctx := eng.Request(); ctx != nil && ctx.Websocket != nil && ctx.Websocket.Conn != nil {
			if c, ok := ctx.Websocket.NetConn().(*deadlineConn); ok {
				wire(c, tr)
			}
		}
		return
	}
	_ = eng.Once("upgrade", func(args ...any) {
		if len(args) == 0 {
			return
		}
		tr, ok := args[0].(transports.Transport)
		if !ok || tr.Name() != "websocket" {
			return
		}
		if c, ok := s.upgrades.LoadAndDelete(eng.Id()); ok {
			wire(c.(*deadlineConn), tr)
		}
	})
}
