package ws

// Connection state recovery, as glow keeps it: a session belongs to the profile whose
// socket left it. The library restores a session to any CONNECT that names its private id
// and offset — and sends the missed packets and joins the rooms before the middleware has
// even looked at the token. So the CONNECT is checked as the connection reads it, before
// the library decodes it: one that names a session of another profile (or whose token does
// not resolve) loses its pid and offset, and its socket starts fresh.

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// socketData is what glow gives a socket as its data (Socket.SetData), which the library
// keeps in the socket's session for the recovery window: whose socket it is, and whether
// its client said goodbye (fault H, contain.go). It holds nothing else: glow's own state of
// a socket holds the socket, and with it the connection.
type socketData struct {
	owner   uuid.UUID // the profile
	goodbye atomic.Bool
}

// sessionOwners remembers whose each kept session is, for as long as the library keeps it.
type sessionOwners struct {
	window time.Duration

	mu     sync.Mutex
	owners map[socket.PrivateSessionId]owned
	swept  time.Time
}

type owned struct {
	profile uuid.UUID
	at      time.Time
}

func newSessionOwners(window time.Duration) *sessionOwners {
	return &sessionOwners{window: window, owners: map[socket.PrivateSessionId]owned{}, swept: time.Now()}
}

// keep records a session's owner, and forgets the owners of expired sessions.
func (o *sessionOwners) keep(pid socket.PrivateSessionId, profile uuid.UUID) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.owners[pid] = owned{profile: profile, at: now}
	if now.Sub(o.swept) > o.window {
		for p, w := range o.owners {
			if now.Sub(w.at) > o.window {
				delete(o.owners, p)
			}
		}
		o.swept = now
	}
}

// owner returns the profile of a kept session.
func (o *sessionOwners) owner(pid socket.PrivateSessionId) (uuid.UUID, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.owners[pid]
	if !ok || time.Since(w.at) > o.window {
		return uuid.Nil, false
	}
	return w.profile, true
}

// sessionStore builds the adapter of glow's namespace when connection state recovery is on:
// the library's session-aware adapter, except that it keeps no session for a socket whose
// client said goodbye (fault H), and records whose each session is.
type sessionStore struct{ owners *sessionOwners }

func (s sessionStore) New(nsp socket.Namespace) socket.Adapter {
	return &recoveryAdapter{SessionAwareAdapter: socket.NewSessionAwareAdapter(nsp), owners: s.owners}
}

type recoveryAdapter struct {
	socket.SessionAwareAdapter
	owners *sessionOwners
}

func (a *recoveryAdapter) PersistSession(session *socket.SessionToPersist) {
	data, ok := session.Data.(*socketData)
	if !ok {
		return // a socket glow never wired up (refused by the middleware): nothing to recover
	}
	if data.goodbye.Load() {
		return
	}
	a.owners.keep(session.Pid, data.owner)
	a.SessionAwareAdapter.PersistSession(session)
}

// guardRecovery watches the packets of every new connection for a CONNECT that asks to
// recover a session (see the top of this file).
func (s *Server) guardRecovery() {
	_ = s.io.Engine().On("connection", func(args ...any) {
		if len(args) == 0 {
			return
		}
		conn, ok := args[0].(engine.Socket)
		if !ok {
			return
		}
		_ = conn.On("packet", func(args ...any) {
			if len(args) > 0 {
				s.checkRecovery(args[0])
			}
		})
	})
}

// checkRecovery strips the pid and offset from a CONNECT of the main namespace whose token
// is not of the profile that owns the session it names.
func (s *Server) checkRecovery(v any) {
	p, ok := v.(*packet.Packet)
	if !ok || p.Type != packet.MESSAGE {
		return
	}
	b, ok := p.Data.(*types.StringBuffer)
	if !ok {
		return
	}
	text := b.String()
	if !strings.HasPrefix(text, "0{") { // a CONNECT of the main namespace, with a payload
		return
	}
	var hello map[string]any
	if json.Unmarshal([]byte(text[1:]), &hello) != nil {
		return // the library refuses it
	}
	pid, ok := hello["pid"].(string)
	if !ok {
		return
	}
	if owner, kept := s.owners.owner(socket.PrivateSessionId(pid)); kept {
		raw, _ := hello["token"].(string)
		if id, err := s.resolver.Resolve(s.ctx, tokenOf(raw)); err == nil && id.ProfileID == owner {
			return
		}
	}
	delete(hello, "pid")
	delete(hello, "offset")
	fresh, err := json.Marshal(hello)
	if err != nil {
		return
	}
	p.Data = types.NewStringBufferString("0" + string(fresh))
}
