package ws

// This file contains the known faults of github.com/zishang520/socket.io v3.0.6 that glow
// contains from outside, and nothing else. Each has a test in contain_test.go that fails if
// the fault comes back, and a negative control that fails once the library fixes it. See
// docs/SOCKETIO.md for what each fault does and how it was measured, for the faults of
// v3.0.2 that v3.0.6 fixed (A1, A2, B, D1, F, G: their tests stay, as regression tests), and
// for the smaller ones that glow only avoids (D).
//
//   - C: a socket's events run one at a time. Server.onEvent (ws.go) runs each call in its
//     own goroutine, bounded per socket.
//   - E: a connection that closes while its socket is connecting leaves the socket connected
//     (in its namespace and rooms) forever, or drops it without a "disconnect" event.
//     watchConn disconnects such a socket and lets glow forget it.

import (
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// containFaults is a test hook, and nothing else: the tests of contain_test.go turn a
// containment off for a while (a negative control) to show that its fault still happens
// without it, so that their passing with it on means something. Production code never
// changes it; every containment is on unless a test says otherwise.
var containFaults struct{ e atomic.Bool }

func init() {
	containFaults.e.Store(true)
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
