package ws

// This file contains the known faults of github.com/zishang520/socket.io v3.0.6 that glow
// contains from outside, and nothing else. Each has a test in contain_test.go that fails if
// the fault comes back, and a negative control that fails once the library fixes it. See
// docs/SOCKETIO.md for what each fault does and how it was measured, for the faults of
// v3.0.2 that v3.0.6 fixed (A1, A2, B, D1, F, G: their tests stay, as regression tests),
// for the smaller ones that glow only avoids (D), and for those not contained yet (I, J).
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

import (
	"sync/atomic"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// containFaults is a test hook, and nothing else: the tests of contain_test.go turn a
// containment off for a while (a negative control) to show that its fault still happens
// without it, so that their passing with it on means something. Production code never
// changes it; every containment is on unless a test says otherwise.
var containFaults struct{ e, h atomic.Bool }

func init() {
	containFaults.e.Store(true)
	containFaults.h.Store(true)
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
