package ws

// Test hooks for contain_test.go: what the external test package needs to reach the
// containments of contain.go, and to switch them off for a negative control.

import (
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// SetContainment switches the containment of a fault — "E", "H", "I" or "M", the ones contain.go can switch —
// and returns a function that restores the previous setting. Only a test that owns every
// server running at the time may call it, and it must restore the setting before it ends.
func SetContainment(fault string, on bool) (restore func()) {
	sw := map[string]*atomic.Bool{"E": &containFaults.e, "H": &containFaults.h, "I": &containFaults.i, "M": &containFaults.m}[fault]
	if sw == nil {
		panic("ws.SetContainment: no fault " + fault)
	}
	was := sw.Swap(on)
	return func() { sw.Store(was) }
}

// DisconnectAll disconnects every socket of s with the library's Disconnect(closeConn): with
// closeConn, the connection is closed at once as well.
func (s *Server) DisconnectAll(closeConn bool) { s.io.DisconnectSockets(closeConn) }

// CloseConnections closes the engine.io connection of every socket of s from the server
// side, at once and without a word to the client (as Revoke does after its grace period).
func (s *Server) CloseConnections() {
	s.io.Of("/", nil).Sockets().Range(func(_ socket.SocketId, sock *socket.Socket) bool {
		sock.Conn().Close(true)
		return true
	})
}

// EngineClients counts the engine.io connections s holds.
func (s *Server) EngineClients() uint64 { return s.io.Engine().ClientsCount() }

// Sessions counts the sessions (tokens) glow tracks sockets for.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// WatchConn is watchConn (fault E).
func WatchConn(sock *socket.Socket, onClose func()) { watchConn(sock, onClose) }

// OnConnection has fn called with every new engine.io connection of s, after glow's own
// listeners.
func (s *Server) OnConnection(fn func(engine.Socket)) {
	_ = s.io.Engine().On("connection", func(args ...any) {
		if conn, ok := args[0].(engine.Socket); ok {
			fn(conn)
		}
	})
}
