package ws

// Connection state recovery, as glow keeps it: a session belongs to the profile whose
// socket left it. The library restores a session to any CONNECT that names its private id
// and offset — and sends the missed packets and joins the rooms before the middleware has
// even looked at the token. So the CONNECT is checked as the connection reads it, before
// the library decodes it: one that names a session of another profile (or whose token does
// not resolve) loses its pid and offset, and its socket starts fresh.

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
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

// recoveryStore is what connection state recovery keeps, in place of the library's
// session-aware adapter (which keeps a copy of every broadcast packet for the window,
// whatever its size): the sessions of the sockets that dropped, with their profiles, for
// the window; and the packets broadcast within the window, up to maxBytes of them, the
// oldest forgotten first. A socket whose last packet was forgotten starts fresh (it then
// subscribes with since, and the event log replays). While anything is kept, a timer
// forgets what expired every half window.
type recoveryStore struct {
	window   time.Duration
	maxBytes int

	mu       sync.Mutex
	sessions map[socket.PrivateSessionId]keptSession
	packets  []keptPacket // in order of offset
	bytes    int          // the sizes of packets, summed
	next     uint64       // the offset of the next packet
	sweeper  *time.Timer  // set while anything is kept
}

type keptSession struct {
	session *socket.SessionToPersist
	owner   uuid.UUID
	at      time.Time
}

type keptPacket struct {
	offset uint64
	at     time.Time
	data   []any
	opts   *socket.BroadcastOptions
	size   int
}

func newRecoveryStore(window time.Duration, maxBytes int) *recoveryStore {
	return &recoveryStore{window: window, maxBytes: maxBytes, sessions: map[socket.PrivateSessionId]keptSession{}, next: 1}
}

// sweepEvery is how often the expired sessions and packets are forgotten.
func (r *recoveryStore) sweepEvery() time.Duration { return max(r.window/2, 100*time.Millisecond) }

// scheduleLocked starts the sweeper if it is not running; r.mu is held.
func (r *recoveryStore) scheduleLocked() {
	if r.sweeper == nil {
		r.sweeper = time.AfterFunc(r.sweepEvery(), r.sweep)
	}
}

// sweep forgets what expired, and runs again while anything is left.
func (r *recoveryStore) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for pid, k := range r.sessions {
		if now.Sub(k.at) > r.window {
			delete(r.sessions, pid)
		}
	}
	r.dropLocked(func(p keptPacket) bool { return now.Sub(p.at) > r.window })
	if len(r.sessions) == 0 && len(r.packets) == 0 {
		r.sweeper = nil
		return
	}
	r.sweeper.Reset(r.sweepEvery())
}

// dropLocked forgets the oldest packets while old says so of the oldest; r.mu is held.
func (r *recoveryStore) dropLocked(old func(keptPacket) bool) {
	drop := 0
	for drop < len(r.packets) && old(r.packets[drop]) {
		r.bytes -= r.packets[drop].size
		drop++
	}
	if drop > 0 {
		clear(r.packets[:drop]) // the dropped packets' data is garbage now
		r.packets = r.packets[drop:]
	}
	if len(r.packets) == 0 {
		r.packets = nil // and so is the array under them
	}
}

// owner returns the profile of a kept session.
func (r *recoveryStore) owner(pid socket.PrivateSessionId) (uuid.UUID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.sessions[pid]
	if !ok || time.Since(k.at) > r.window {
		return uuid.Nil, false
	}
	return k.owner, true
}

// Bytes is what the kept packets weigh.
func (r *recoveryStore) Bytes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes
}

func (r *recoveryStore) keepSession(session *socket.SessionToPersist, owner uuid.UUID) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions[session.Pid] = keptSession{session: session, owner: owner, at: now}
	r.scheduleLocked()
}

// keepPacket numbers a broadcast packet's data and keeps it; it returns the data with the
// offset at its end, where socket.io clients expect it.
func (r *recoveryStore) keepPacket(data []any, opts *socket.BroadcastOptions) []any {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	offset := r.next
	r.next++
	id := strconv.FormatUint(offset, 36)
	data = append(data, id)
	size := packetSize(data)
	r.packets = append(r.packets, keptPacket{offset: offset, at: now, data: data, opts: opts, size: size})
	r.bytes += size
	r.dropLocked(func(p keptPacket) bool {
		return p.offset != offset && (r.bytes > r.maxBytes || now.Sub(p.at) > r.window)
	})
	r.scheduleLocked()
	return data
}

// restore returns a kept session with the packets it missed after offset, and forgets it;
// nil when the session expired or its offset is no longer kept.
func (r *recoveryStore) restore(pid socket.PrivateSessionId, offset string) *socket.Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.sessions[pid]
	if !ok {
		return nil
	}
	delete(r.sessions, pid)
	if time.Since(k.at) > r.window {
		return nil
	}
	after, err := strconv.ParseUint(offset, 36, 64)
	if err != nil {
		return nil
	}
	i, found := slices.BinarySearchFunc(r.packets, after, func(p keptPacket, o uint64) int { return cmp.Compare(p.offset, o) })
	if !found {
		return nil // forgotten, or never sent by this process
	}
	var missed []any
	for _, p := range r.packets[i+1:] {
		if reaches(k.session.Rooms, p.opts) {
			missed = append(missed, p.data)
		}
	}
	return &socket.Session{SessionToPersist: k.session, MissedPackets: missed}
}

// reaches says whether a broadcast reached a socket in rooms.
func reaches(rooms *types.Set[socket.Room], opts *socket.BroadcastOptions) bool {
	if opts == nil {
		return true
	}
	in := opts.Rooms == nil || opts.Rooms.Len() == 0
	for _, room := range rooms.Keys() {
		if opts.Except != nil && opts.Except.Has(room) {
			return false
		}
		if !in && opts.Rooms.Has(room) {
			in = true
		}
	}
	return in
}

// packetSize estimates what a packet's data weighs in memory.
func packetSize(data []any) int {
	n := 64
	for _, v := range data {
		switch v := v.(type) {
		case string:
			n += len(v) + 16
		case json.RawMessage:
			n += len(v) + 24
		case []byte:
			n += len(v) + 24
		default:
			n += 256
		}
	}
	return n
}

// adapters builds the adapter of glow's namespace: the library's in-memory adapter, with
// glow's broadcast (broadcast.go) and, when connection state recovery is on (kept is set),
// sessions and packets kept in a recoveryStore. It keeps no session for a socket whose
// client said goodbye (fault H).
type adapters struct {
	kept      *recoveryStore
	delivered *atomic.Int64 // the packets broadcast to sockets, counted per socket
}

func (s adapters) New(nsp socket.Namespace) socket.Adapter {
	a := &adapter{Adapter: socket.MakeAdapter(), kept: s.kept, delivered: s.delivered}
	a.Prototype(a)
	a.Construct(nsp)
	return a
}

type adapter struct {
	socket.Adapter
	kept      *recoveryStore // nil: recovery is off
	delivered *atomic.Int64
}

func (a *adapter) PersistSession(session *socket.SessionToPersist) {
	data, ok := session.Data.(*socketData)
	if a.kept == nil || !ok || data.goodbye.Load() {
		return // a socket glow never wired up (refused by the middleware), or one that left
	}
	a.kept.keepSession(session, data.owner)
}

func (a *adapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	if a.kept == nil {
		return nil, nil
	}
	return a.kept.restore(pid, offset), nil
}

// Broadcast keeps the event packets a reconnecting socket may have missed — not those with
// an ack (it cannot be restored), nor volatile ones — and sends the packet.
func (a *adapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	a.keep(packet, opts)
	a.broadcast([]*parser.Packet{packet}, opts)
}

// BroadcastAll is Broadcast of several packets to the same sockets, in order: each socket
// is handed them together.
func (a *adapter) BroadcastAll(packets []*parser.Packet, opts *socket.BroadcastOptions) {
	for _, p := range packets {
		a.keep(p, opts)
	}
	a.broadcast(packets, opts)
}

// keep keeps packet for recovery, when it is one a reconnecting socket may get back.
func (a *adapter) keep(packet *parser.Packet, opts *socket.BroadcastOptions) {
	volatile := opts != nil && opts.Flags != nil && opts.Flags.Volatile
	if data, ok := packet.Data.([]any); ok && a.kept != nil && packet.Type == parser.EVENT && packet.Id == nil && !volatile {
		packet.Data = a.kept.keepPacket(data, opts)
	}
}

// checkRecovery strips the pid and offset from a CONNECT of the main namespace (its text,
// as the connection read it, is text) whose token is not of the profile that owns the
// session it names. The connection's packets are watched from the start (watchConnections,
// contain.go), and this is called with each such CONNECT before the library decodes it.
func (s *Server) checkRecovery(p *packet.Packet, text []byte) {
	if len(text) < 2 || text[1] != '{' { // no payload, so no session named
		return
	}
	var hello map[string]any
	if json.Unmarshal(text[1:], &hello) != nil {
		return // the library refuses it
	}
	pid, ok := hello["pid"].(string)
	if !ok {
		return
	}
	if owner, kept := s.recovery.owner(socket.PrivateSessionId(pid)); kept {
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
