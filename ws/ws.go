// Package ws is the socket.io transport, mounted at /socket.io/ beside the HTTP API. A
// socket authenticates once, in the handshake (auth: {token: "Bearer <token>"}); every
// event is then an operation of the generated table: its one argument is the request body
// and its ack is {"status", "body"}, exactly what HTTP answers. Every socket joins its
// profile's room, where the lifecycle events of all the profile's calls arrive.
package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/problem"
)

// Resolver turns a bearer token into the caller's identity.
type Resolver interface {
	Resolve(ctx context.Context, token string) (*auth.Identity, error)
}

// Options tunes the socket.io transport.
type Options struct {
	PingInterval    time.Duration // engine.io heartbeat interval (default 25s)
	PingTimeout     time.Duration // how long a pong may take (default 20s)
	ConnectTimeout  time.Duration // how long a new connection may take to send CONNECT (default 10s)
	MaxMessageBytes int64         // largest incoming message (default 1 MiB); larger ones close the connection
	MaxCalls        int           // calls one socket may have running at once (default 16)
	KickGrace       time.Duration // between telling a revoked socket and closing its connection (default 250ms)
	WriteTimeout    time.Duration // longest a write to a client may wait (default 10s); then it is disconnected
	// RecoveryWindow is how long socket.io keeps a dropped socket's rooms and the packets
	// it missed, for it to recover them on reconnection (connection state recovery; default
	// 30 seconds, negative: off).
	RecoveryWindow time.Duration
	// RecoveryBytes bounds the broadcast packets kept for recovery (default 16 MiB): past it
	// the oldest are forgotten, and a socket that missed one of them starts fresh.
	RecoveryBytes int
	// TokenProtocol lets a websocket client carry its token as its handshake's subprotocols,
	// "Sec-WebSocket-Protocol: Bearer, <token>" (the server answers "Bearer"), when its
	// CONNECT has none.
	TokenProtocol bool
	// TokenQuery lets a client carry its token as the handshake URL's ?token=, when its
	// CONNECT has none. Off by default: URLs end up in proxies' logs.
	TokenQuery bool
}

func (o *Options) defaults() {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 20
	}
	if o.MaxCalls <= 0 {
		o.MaxCalls = 16
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.KickGrace <= 0 {
		o.KickGrace = 250 * time.Millisecond
	}
	if o.RecoveryWindow == 0 {
		o.RecoveryWindow = 30 * time.Second
	}
	if o.RecoveryBytes <= 0 {
		o.RecoveryBytes = 16 << 20
	}
}

// Presence counts open sockets per profile.
type Presence interface {
	Connected(profileID uuid.UUID)
	Disconnected(profileID uuid.UUID)
}

// Server is the socket.io transport.
type Server struct {
	io       *socket.Server
	handler  http.Handler
	dispatch *dispatch.Dispatcher
	resolver Resolver
	events   *events.Log
	presence Presence
	log      *slog.Logger
	opts     Options
	recovery *recoveryStore // what connection state recovery keeps; nil when it is off

	ctx    context.Context // cancelled by Close; parent of every socket's context
	cancel context.CancelFunc

	mu       sync.Mutex
	sessions map[uuid.UUID]map[*socket.Socket]*conn // sockets per session, for revocation

	upgrades sync.Map // engine.io session id → the websocket upgrading it (deadline.go)
	guards   sync.Map // engine.io session id → its *connGuard (contain.go)

	calls *workers // the goroutines socket calls run on (workers.go)

	delivered atomic.Int64 // see Delivered
}

// conn is what a socket carries: who it is, and its bounded call slots.
type conn struct {
	id     *auth.Identity
	follow *follower
	ctx    context.Context // carries id; cancelled when the socket disconnects
	cancel context.CancelFunc
	slots  chan struct{}
	once   sync.Once
}

// New builds the transport. Stored events reach the sockets in their topic's room; sockets
// count in presence while connected.
func New(d *dispatch.Dispatcher, r Resolver, evs *events.Log, presence Presence, log *slog.Logger, opts Options) *Server {
	opts.defaults()
	s := &Server{dispatch: d, resolver: r, events: evs, presence: presence, log: log, opts: opts,
		sessions: map[uuid.UUID]map[*socket.Socket]*conn{}, calls: newWorkers(callWorkerIdle)}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	so.SetPingInterval(opts.PingInterval)
	so.SetPingTimeout(opts.PingTimeout)
	so.SetConnectTimeout(opts.ConnectTimeout)
	so.SetMaxHttpBufferSize(opts.MaxMessageBytes)
	so.SetParser(newCodec())
	// Connection state recovery: a socket that reconnects soon keeps its id and rooms and gets
	// the packets it missed. The middleware still runs (the token is checked again). Across
	// a restart, or after a longer gap, the event log replays instead (system.subscribe).
	if opts.RecoveryWindow > 0 {
		recovery := socket.DefaultConnectionStateRecovery()
		recovery.SetMaxDisconnectionDuration(opts.RecoveryWindow.Milliseconds())
		recovery.SetSkipMiddlewares(false)
		so.SetConnectionStateRecovery(recovery)
		// Sessions and packets are kept by glow's adapter, bounded by the window and by
		// RecoveryBytes (recovery.go).
		s.recovery = newRecoveryStore(opts.RecoveryWindow, opts.RecoveryBytes)
	}
	so.SetAdapter(adapters{kept: s.recovery, delivered: &s.delivered})
	so.SetTransports(types.NewSet(engine.Polling, engine.WebSocket))
	s.io = socket.NewServer(nil, so)
	s.handler = s.boundWrites(s.io.ServeHandler(nil))
	s.watchConnections()
	if opts.TokenProtocol {
		s.io.Engine().Use(answerTokenProtocol)
	}

	s.io.Of("/", nil).Use(s.authenticate)
	evs.Subscribe(s.deliver)
	return s
}

// Handler serves /socket.io/.
func (s *Server) Handler() http.Handler { return s.handler }

// authenticate is the namespace middleware: it resolves the handshake's token, refuses the
// socket without one, and otherwise wires the socket up before letting it connect.
//
// It does so on a goroutine of its own, which ends with the handshake: the token's lookup
// runs deep (the database driver), and on the connection's reading goroutine, which lives
// as long as the socket, it would leave a stack of that depth to every idle socket. The
// library lets a middleware answer later: it queues the connect behind next.
func (s *Server) authenticate(sock *socket.Socket, next func(*socket.ExtendedError)) {
	go s.admit(sock, next)
}

// admit is authenticate's work.
func (s *Server) admit(sock *socket.Socket, next func(*socket.ExtendedError)) {
	id, err := s.resolver.Resolve(s.ctx, s.handshakeToken(sock))
	if err != nil {
		s.guardOf(sock).release() // the client may CONNECT again, on the same connection
		// The error's message is what socket.io clients show; its data is the problem
		// document HTTP would answer.
		if !errors.Is(err, auth.ErrUnauthorized) {
			s.log.Error("resolve socket token", "err", err)
			next(socket.NewExtendedError("internal error", problem.New(http.StatusInternalServerError, "the token could not be checked")))
			return
		}
		next(socket.NewExtendedError("unauthorized", problem.Unauthorized("a valid bearer token is required in auth.token")))
		return
	}
	c := &conn{id: id, slots: make(chan struct{}, s.opts.MaxCalls), follow: &follower{s: s, sock: sock}}
	c.ctx, c.cancel = context.WithCancel(events.WithFollower(auth.NewContext(s.ctx, id), c.follow))
	data := &socketData{owner: id.ProfileID}
	sock.SetData(data)
	watchGoodbye(sock, data) // fault H
	if sock.Recovered() {
		// A replay the dropped connection was in the middle of ended with it; its replay room,
		// restored with the others, would go on keeping the topic's live events away. The
		// live topics it followed count it in their audience again.
		for _, room := range sock.Rooms().Keys() {
			if strings.HasPrefix(string(room), replayRoomPrefix) {
				sock.Leave(room)
			} else if topic := topicOf(string(room)); topic != events.ProfileTopic(id.ProfileID) {
				c.follow.join(topic)
			}
		}
	}
	c.follow.join(events.ProfileTopic(id.ProfileID))
	sock.Join(socket.Room(profileRoom(id.ProfileID)))
	sock.OnAny(func(args ...any) { s.onEvent(c, args) })
	_ = sock.On("disconnect", func(...any) { s.forget(sock, c) })
	s.track(sock, c)
	watchConn(sock, func() { s.forget(sock, c) }) // fault E
	s.coalesce(sock)
	next(nil)
}

// handshakeToken reads the CONNECT's auth.token ("Bearer <token>" or the bare token); when
// there is none, the token of the handshake's subprotocols or URL, where they are enabled.
func (s *Server) handshakeToken(sock *socket.Socket) string {
	if h := sock.Handshake(); h != nil {
		if raw, _ := h.Auth["token"].(string); raw != "" {
			return tokenOf(raw)
		}
	}
	ctx := sock.Request()
	if ctx == nil || ctx.Request() == nil {
		return ""
	}
	r := ctx.Request()
	if s.opts.TokenProtocol {
		if token, ok := protocolToken(r.Header.Get("Sec-WebSocket-Protocol")); ok {
			return token
		}
	}
	if s.opts.TokenQuery {
		return r.URL.Query().Get("token")
	}
	return ""
}

// protocolToken reads "Bearer, <token>", a websocket handshake's subprotocols.
func protocolToken(protocols string) (string, bool) {
	scheme, token, ok := strings.Cut(protocols, ",")
	if !ok || !strings.EqualFold(strings.TrimSpace(scheme), "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// answerTokenProtocol has the websocket handshake of a client that offers its token as
// subprotocols answer with the "Bearer" one (a client refuses a handshake that picks none
// of those it offered). It is an engine.io middleware, which runs before the upgrade.
func answerTokenProtocol(ctx *types.HttpContext, next func(error)) {
	if r := ctx.Request(); r != nil {
		if _, ok := protocolToken(r.Header.Get("Sec-WebSocket-Protocol")); ok {
			// In the canonical form, the only one the websocket library looks up.
			ctx.ResponseHeaders().Set(http.CanonicalHeaderKey("Sec-WebSocket-Protocol"), "Bearer")
		}
	}
	next(nil)
}

// tokenOf reads "Bearer <token>" or the bare token.
func tokenOf(raw string) string {
	if token, ok := auth.ParseBearer(raw); ok {
		return token
	}
	return strings.TrimSpace(raw)
}

// onEvent runs one event as an operation, on a goroutine of its own (fault C; a worker, workers.go), and acks the
// result. Unknown events and sockets over their call limit are answered at once.
func (s *Server) onEvent(c *conn, args []any) {
	if len(args) == 0 {
		return
	}
	start := time.Now()
	event, _ := args[0].(string)
	args = args[1:]
	var ack socket.Ack
	if n := len(args); n > 0 {
		if fn, ok := args[n-1].(socket.Ack); ok {
			ack, args = fn, args[:n-1]
		}
	}
	refuse := func(p *problem.Problem) {
		s.dispatch.Refused(c.ctx, event, dispatch.SocketIO, p.Status, start)
		replyProblem(ack, p)
	}
	op, ok := gen.OperationByID(event)
	if !ok {
		refuse(problem.NotFound("unknown event %q; the events are the operationIds of /openapi.yaml", event))
		return
	}
	if len(args) > 1 {
		refuse(problem.BadRequest(fmt.Sprintf("%s takes one argument, the request body; got %d", event, len(args))))
		return
	}
	body, err := payload(args)
	if err != nil {
		refuse(problem.BadRequest(err.Error()))
		return
	}
	select {
	case c.slots <- struct{}{}:
	default:
		refuse(problem.New(http.StatusTooManyRequests,
			fmt.Sprintf("this socket already has %d calls running; wait for their acks", cap(c.slots))))
		return
	}
	s.calls.run(func() {
		res := s.dispatch.Do(c.ctx, op, body, dispatch.SocketIO)
		// Free the slot before acking: a client may send its next call as soon as it has
		// the ack, and must not be refused for a slot this call still held.
		<-c.slots
		reply(ack, res.Status, res.Body)
	})
}

// payload turns the event's argument into the JSON request body. A string is taken as JSON
// text, so a client can send the very bytes it would POST.
func payload(args []any) ([]byte, error) {
	if len(args) == 0 {
		return nil, nil
	}
	switch v := args[0].(type) {
	case json.RawMessage: // what glow's decoder reads (codec.go)
		if len(v) > 0 && v[0] == '"' { // a string: its text is the body
			var text string
			if err := json.Unmarshal(v, &text); err != nil {
				return nil, fmt.Errorf("the argument cannot be read as JSON: %v", err)
			}
			return []byte(text), nil
		}
		return v, nil
	case string:
		return []byte(v), nil
	case types.BufferInterface:
		return v.Bytes(), nil
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("the argument cannot be read as JSON: %v", err)
		}
		return b, nil
	}
}

// reply acks with the envelope every event gets: {"status": <HTTP status>, "body": <HTTP
// body>}, the body spliced in as the handler wrote it (codec.go).
func reply(ack socket.Ack, status int, body []byte) {
	if ack != nil {
		ack([]any{ackBody{status: status, body: body}}, nil)
	}
}

func replyProblem(ack socket.Ack, p *problem.Problem) {
	body, _ := json.Marshal(p)
	reply(ack, p.Status, body)
}

// deliver sends stored events to the rooms of their topics, in order. Each socket gets an
// event once, even when it is in several of its rooms, and none while it replays the
// event's topic (the replay brings it).
//
// Consecutive events of the same rooms (a reply's deltas, say) go out as one broadcast of
// several packets: each socket is handed them together, so its transport writes them as one
// batch rather than one write per event.
func (s *Server) deliver(batch []events.Event) {
	a := s.io.Sockets().Adapter().(*adapter) // the namespace's adapter is glow's (adapters)
	for len(batch) > 0 {
		n := 1
		for n < len(batch) && sameRooms(batch[0], batch[n]) {
			n++
		}
		ev := batch[0]
		rooms := []socket.Room{socket.Room(roomOf(ev.Topic))}
		for _, t := range ev.Also {
			rooms = append(rooms, socket.Room(roomOf(t)))
		}
		packets := make([]*parser.Packet, n)
		for i, ev := range batch[:n] {
			packets[i] = &parser.Packet{Type: parser.EVENT, Data: []any{ev.Name, ev.Payload()}}
		}
		a.BroadcastAll(packets, &socket.BroadcastOptions{
			Rooms:  types.NewSet(rooms...),
			Except: types.NewSet(socket.Room(replayRoomOf(ev.Topic))),
		})
		batch = batch[n:]
	}
}

// sameRooms says whether two events go to the same rooms, with the same exception.
func sameRooms(a, b events.Event) bool {
	return a.Topic == b.Topic && slices.Equal(a.Also, b.Also)
}

func profileRoom(id uuid.UUID) string { return roomOf(events.ProfileTopic(id)) }

// roomOf names the room of a topic's live audience: "profile/<id>" is "profile:<id>".
func roomOf(topic string) string { return strings.Replace(topic, "/", ":", 1) }

// topicOf is the topic of a room named by roomOf: "profile:<id>" is "profile/<id>". (A
// socket's own room, its id, names no topic and is left as it is.)
func topicOf(room string) string { return strings.Replace(room, ":", "/", 1) }

// replayRoomOf names the room of the sockets replaying a topic: "replay:profile/<id>".
func replayRoomOf(topic string) string { return replayRoomPrefix + topic }

const replayRoomPrefix = "replay:"

// track counts a new socket: in its session (for revocation) and in presence.
func (s *Server) track(sock *socket.Socket, c *conn) {
	s.mu.Lock()
	set := s.sessions[c.id.SessionID]
	if set == nil {
		set = map[*socket.Socket]*conn{}
		s.sessions[c.id.SessionID] = set
	}
	set[sock] = c
	s.mu.Unlock()
	s.presence.Connected(c.id.ProfileID)
}

// forget undoes track, once: the library may report a disconnect twice.
func (s *Server) forget(sock *socket.Socket, c *conn) {
	c.once.Do(func() {
		s.guardOf(sock).releaseSocket(sock)
		c.cancel()
		c.follow.leave("")
		s.mu.Lock()
		if set := s.sessions[c.id.SessionID]; set != nil {
			delete(set, sock)
			if len(set) == 0 {
				delete(s.sessions, c.id.SessionID)
			}
		}
		s.mu.Unlock()
		s.presence.Disconnected(c.id.ProfileID)
	})
}

// Revoke disconnects every socket authenticated with a session (token). The client is told
// first (a namespace disconnect, so it does not reconnect), then the connection is closed.
func (s *Server) Revoke(sessionID uuid.UUID) int {
	s.mu.Lock()
	var socks []*socket.Socket
	for sock := range s.sessions[sessionID] {
		socks = append(socks, sock)
	}
	s.mu.Unlock()
	for _, sock := range socks {
		sock.Disconnect(false)
		conn := sock.Conn()
		time.AfterFunc(s.opts.KickGrace, func() { conn.Close(true) })
	}
	return len(socks)
}

// Reauthenticate closes the connections of the sockets whose identity matches — a profile's
// former rights, once its role or departments changed: each client reconnects by itself,
// and its handshake resolves its token again, so that its calls and rooms follow the
// change. It says how many sockets it closed.
func (s *Server) Reauthenticate(match func(*auth.Identity) bool) int {
	s.mu.Lock()
	var socks []*socket.Socket
	for _, set := range s.sessions {
		for sock, c := range set {
			if match(c.id) {
				socks = append(socks, sock)
			}
		}
	}
	s.mu.Unlock()
	for _, sock := range socks {
		sock.Conn().Close(true)
	}
	return len(socks)
}

// RecoveryBytes is what the broadcast packets kept for connection state recovery weigh.
func (s *Server) RecoveryBytes() int {
	if s.recovery == nil {
		return 0
	}
	return s.recovery.Bytes()
}

// Delivered counts the events broadcast to sockets since start, once per socket reached.
func (s *Server) Delivered() int64 { return s.delivered.Load() }

// Sockets counts the connected sockets.
func (s *Server) Sockets() int { return s.io.Of("/", nil).Sockets().Len() }

// Close disconnects every socket and cancels their calls.
func (s *Server) Close() {
	s.cancel()
	s.io.Close(nil)
}
