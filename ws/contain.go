package ws

// This file contains the known faults of github.com/zishang520/socket.io v3.0.6 that glow
// contains from outside, and nothing else. Each has a test (contain_test.go, guard_test.go) that fails if
// the fault comes back, and a negative control that fails once the library fixes it. See
// docs/SOCKETIO.md for what each fault does and how it was measured, for the faults of
// v3.0.2 that v3.0.6 fixed (A1, A2, B, D1, F, G: their tests stay, as regression tests),
// for the smaller ones that glow only avoids (D), and for the one not contained yet (J).
//
//   - C: a socket's events run one at a time. Server.onEvent (ws.go) runs each call in its
//     own goroutine, bounded per socket.
//   - E: a connection that closes while its socket is connecting leaves the socket connected
//     (in its namespace and rooms) forever, or drops it without a "disconnect" event.
//     watchConn disconnects such a socket and lets glow forget it.
//   - H: a client's DISCONNECT that its connection's close overtakes is taken for a dropped
//     connection, and the socket's session is kept for recovery. watchGoodbye notes the
//     DISCONNECT as it arrives, and the namespace's adapter (recovery.go) keeps no session
//     for such a socket.
//   - I: a packet the client sends as soon as it has its CONNECT ack can be read before the
//     library has registered the socket with its connection, which it then closes. The
//     connection guard holds such a packet until the socket is registered.
//   - M: a second CONNECT of a namespace on one connection makes a second socket (every
//     broadcast then reaches the client twice) or, once the first is registered, closes the
//     connection. The connection guard drops it.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// containFaults is a test hook, and nothing else: the tests of contain_test.go turn a
// containment off for a while (a negative control) to show that its fault still happens
// without it, so that their passing with it on means something. Production code never
// changes it; every containment is on unless a test says otherwise.
var containFaults struct{ e, h, i, m atomic.Bool }

func init() {
	containFaults.e.Store(true)
	containFaults.h.Store(true)
	containFaults.i.Store(true)
	containFaults.m.Store(true)
}

// watchConn contains E for a socket that passed the middleware: onClose runs once its
// connection closes (at once if it already has), and the socket is then disconnected.
//
// The library adds a socket to its namespace and marks it connected before registering it
// with its connection, which on closing tells only the registered sockets: a connection
// closing in between leaves the socket connected forever (its rooms, and whatever glow
// keeps for it). One closing during the middleware makes the library drop the socket without
// a "disconnect" event, so glow's bookkeeping would stay. The disconnect is queued on the
// socket's own task queue, behind the library's connect task.
func watchConn(sock *socket.Socket, onClose func()) {
	if !containFaults.e.Load() {
		return
	}
	c := sock.Conn()
	_ = c.Once("close", func(...any) {
		onClose()
		sock.Enqueue(func() { sock.Disconnect(false) })
	})
	if c.ReadyState() == "closed" { // closed before the listener was in place
		onClose()
	}
}

// watchGoodbye contains H for a socket that passed the middleware: it notes the client's
// DISCONNECT as the connection reads it, before anything can close the socket.
//
// The library reads a connection on one goroutine and runs its socket's packets on the
// socket's task queue, but closes the socket on the reading goroutine itself. A client that
// disconnects sends DISCONNECT and closes its connection at once (the official client does
// both in the same tick): the close is often read and handled before the queued DISCONNECT
// runs, and the socket then closes for "transport close", one of the reasons that keep a
// session for recovery — for a client that will never come back for it. The connection's
// "packet" event comes on the reading goroutine, before the packet is queued, and so before
// any close that follows it.
func watchGoodbye(sock *socket.Socket, data *socketData) {
	if !containFaults.h.Load() {
		return
	}
	_ = sock.Conn().On("packet", func(args ...any) {
		if len(args) > 0 && isDisconnect(args[0]) {
			data.goodbye.Store(true)
		}
	})
}

// isDisconnect says whether an engine.io packet carries a socket.io DISCONNECT of the main
// namespace ("1"), the only one glow serves.
func isDisconnect(v any) bool {
	p, ok := v.(*packet.Packet)
	if !ok || p.Type != packet.MESSAGE {
		return false
	}
	b, ok := p.Data.(*types.StringBuffer)
	return ok && string(b.Bytes()) == "1"
}

// connGuard is what glow has read of one connection's socket in the main namespace: none,
// one connecting (its CONNECT was read; the middleware or the library is not done with it),
// or one registered with the connection. It contains I and M.
type connGuard struct {
	mu    sync.Mutex
	state guardState
	sock  *socket.Socket // the registered socket
	ready chan struct{}  // closed when the connecting socket registers, or is gone
}

type guardState int

const (
	guardFree guardState = iota
	guardConnecting
	guardRegistered
)

// claim notes a CONNECT and says whether it is the connection's first (since the last
// socket left): only that one may make a socket.
func (g *connGuard) claim() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != guardFree {
		return false
	}
	g.state, g.ready = guardConnecting, make(chan struct{})
	return true
}

// registered notes that sock, the connecting socket, is registered with its connection
// (when it is still open: a nil guard does nothing).
func (g *connGuard) registered(sock *socket.Socket) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == guardConnecting {
		g.state, g.sock = guardRegistered, sock
		close(g.ready)
	}
}

// release frees the namespace for a new CONNECT: the client said DISCONNECT, the middleware
// refused the socket, or the connection closed. A nil guard (a connection already closed)
// does nothing.
func (g *connGuard) release() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == guardConnecting {
		close(g.ready)
	}
	g.state, g.sock = guardFree, nil
}

// releaseSocket is release, when sock is the registered socket: it disconnected, and the
// client may connect again on the same connection. (One that disconnected after its client
// said DISCONNECT and sent a new CONNECT leaves the new socket be.)
func (g *connGuard) releaseSocket(sock *socket.Socket) {
	if g == nil {
		return
	}
	g.mu.Lock()
	mine := g.state == guardRegistered && g.sock == sock
	g.mu.Unlock()
	if mine {
		g.release()
	}
}

// await holds the connection's reading until its connecting socket is registered, or gone,
// for at most limit.
func (g *connGuard) await(limit time.Duration) {
	g.mu.Lock()
	if g.state != guardConnecting {
		g.mu.Unlock()
		return
	}
	ready := g.ready
	g.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
	}
}

// watchConnections gives every connection a guard, which reads each of its packets as the
// connection reads it, before the library does:
//
//   - M: the library makes a socket of every CONNECT of a namespace the connection has none
//     registered in yet, so two CONNECTs in a row make two sockets, both in the profile's
//     rooms, and the client gets every broadcast twice; a CONNECT once a socket is
//     registered is an "invalid state" that closes the connection. The library's own Go
//     client sends its CONNECT twice now and then (its Socket.Connect subscribes to the
//     manager's "open", starts opening it and then checks whether it is open, so both may
//     fire). The guard drops every CONNECT after the first, until the socket is gone.
//   - I: the library writes the CONNECT ack before it registers the socket with its
//     connection, and a packet of the namespace read in between is an "invalid state" that
//     closes the connection: a client that calls as soon as it has connected loses its
//     connection now and then. The guard holds such a packet until the socket is registered
//     (the namespace's "connection" event, which the library emits after registering it).
//
// It also has recovery check each CONNECT (recovery.go).
func (s *Server) watchConnections() {
	_ = s.io.Engine().On("connection", func(args ...any) {
		if len(args) == 0 {
			return
		}
		conn, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		g := &connGuard{}
		id := conn.Id()
		s.guards.Store(id, g)
		_ = conn.Once("close", func(...any) {
			s.guards.Delete(id)
			g.release()
		})
		_ = conn.On("packet", func(args ...any) {
			if len(args) > 0 {
				s.inspect(g, args[0])
			}
		})
	})
	_ = s.io.Of("/", nil).On("connection", func(args ...any) {
		if len(args) > 0 {
			if sock, ok := args[0].(*socket.Socket); ok {
				s.guardOf(sock).registered(sock)
			}
		}
	})
}

// guardOf is the guard of sock's connection; nil once the connection has closed.
func (s *Server) guardOf(sock *socket.Socket) *connGuard {
	if g, ok := s.guards.Load(sock.Conn().Id()); ok {
		return g.(*connGuard)
	}
	return nil
}

// inspect is what the guard of a connection does with a packet it read (watchConnections).
func (s *Server) inspect(g *connGuard, v any) {
	p, ok := v.(*packet.Packet)
	if !ok || p.Type != packet.MESSAGE {
		return
	}
	b, ok := p.Data.(*types.StringBuffer)
	if !ok {
		return // a binary attachment, which follows its packet's text
	}
	text := b.Bytes()
	if len(text) == 0 || len(text) > 1 && text[1] == '/' {
		return // not a socket.io packet of the main namespace: the library answers it
	}
	switch text[0] {
	case '0': // CONNECT
		if !g.claim() && containFaults.m.Load() {
			p.Type = packet.NOOP // which the engine passes over
			return
		}
		if s.recovery != nil {
			s.checkRecovery(p, text)
		}
	case '1': // DISCONNECT
		g.release()
	default:
		if containFaults.i.Load() {
			g.await(s.opts.ConnectTimeout)
		}
	}
}
