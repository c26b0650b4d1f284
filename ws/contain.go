package ws

// This file contains the known faults of github.com/zishang520/socket.io v3.0.2, and nothing
// else. Each fault has a test in contain_test.go that fails if it comes back (after a
// library upgrade, say). See docs/SOCKETIO.md for what each fault does and how it was
// measured, and for the faults that cannot be contained from outside (D, F).
//
//   - B: the OPEN packet can reach the client before socket.io listens to the connection, and
//     the client's CONNECT is then lost. gate holds a handshake's packets until the engine's
//     "connection" listeners have run.
//   - C: a socket's events run one at a time. Server.onEvent runs each call in its own
//     goroutine, bounded per socket.
//   - E: a connection that closes while its socket is connecting leaves the socket connected
//     (in its namespace and rooms) forever, or drops it without a "disconnect" event.
//     watchConn disconnects such a socket and lets glow forget it.

import (
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// containFaults is a test hook, and nothing else: the tests of contain_test.go turn one
// containment off for a while (a negative control) to show that its fault still happens
// without it, so that their passing with it on means something. Production code never
// changes it; every containment is on unless a test says otherwise.
var containFaults struct{ b, e atomic.Bool }

func init() {
	containFaults.b.Store(true)
	containFaults.e.Store(true)
}

// contained wraps a stock transport constructor (given to ServerOptions.SetTransports).
type contained struct {
	engine.TransportCtor
}

// New builds the stock transport with the containment of B around it.
func (c *contained) New(ctx *types.HttpContext) transports.Transport {
	t := c.TransportCtor.New(ctx)

	// B: a transport without a session id is a handshake; hold what it sends (the OPEN
	// packet) until socket.io has attached to the new connection.
	if containFaults.b.Load() && ctx.Query().Peek("sid") == "" {
		return &gate{Transport: t}
	}
	return t
}

// gate holds a handshake transport's packets until release.
type gate struct {
	transports.Transport

	mu       sync.Mutex
	released bool
	held     [][]*packet.Packet
}

// Send holds packets until the gate is released, then passes them through.
func (g *gate) Send(packets []*packet.Packet) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.released {
		g.held = append(g.held, packets)
		return
	}
	g.Transport.Send(packets)
}

// release sends the held packets, in order, and opens the gate. The stock transports queue
// what they are sent, so sending under the lock does not block.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.held {
		g.Transport.Send(p)
	}
	g.held, g.released = nil, true
}

// releaseHandshake opens the gate of a new engine connection. It is an engine "connection"
// listener registered after socket.io's own, so it runs once socket.io listens.
func releaseHandshake(args ...any) {
	if len(args) == 0 {
		return
	}
	if conn, ok := args[0].(engine.Socket); ok {
		if g, ok := conn.Transport().(*gate); ok {
			g.release()
		}
	}
}

// watchConn contains E for a socket that passed the middleware: onClose runs once its
// connection closes (at once if it already has), and the socket is then disconnected.
//
// The library adds a socket to its namespace and marks it connected before registering it
// with its connection, which on closing tells only the registered sockets: a connection
// closing in between leaves the socket connected forever (a goroutine, its rooms, and
// whatever glow keeps for it). One closing during the middleware makes the library drop the
// socket without a "disconnect" event, so glow's bookkeeping would stay. The disconnect is
// queued on the socket's own task queue, behind the library's connect task.
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
