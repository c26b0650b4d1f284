package ws

// glow's broadcast: what the library's in-memory adapter does — encode the packet once,
// then hand the encoded packet to every connected socket of the rooms, each once, except
// those in the except rooms — less one thing. The library also gives the websocket transport
// the packet as a "pre-encoded frame", which it turns into a gorilla/websocket
// PreparedMessage for every socket it writes to: a frame builder with a 4 KiB buffer of its
// own, allocated, cleared and thrown away per socket and packet. Without it the transport
// writes the same encoded bytes through the connection's own write buffer.

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// broadcast sends packets, in order, to the sockets opts reaches. Several packets are
// handed to each socket together: the first goes
// out at once, the others wait in the engine's buffer until that write is done and then go
// out as one batch (one write, see coalesce), where one each would be a write of its own.
func (a *adapter) broadcast(packets []*parser.Packet, opts *socket.BroadcastOptions) {
	write := &socket.WriteOptions{PreEncoded: true}
	if opts != nil && opts.Flags != nil {
		write.Volatile = opts.Flags.Volatile
		write.Compress = opts.Flags.Compress
	}
	var encoded []types.BufferInterface
	for _, packet := range packets {
		packet.Nsp = a.Nsp().Name()
		encoded = append(encoded, a.Nsp().Server().Encoder().Encode(packet)...)
	}
	reached := 0
	a.each(opts, func(sock *socket.Socket) {
		if notify := sock.NotifyOutgoingListeners(); notify != nil {
			for _, packet := range packets {
				notify(packet)
			}
		}
		sock.Client().WriteToEngine(encoded, write)
		reached++
	})
	a.delivered.Add(int64(reached * len(packets)))
}

// each calls fn with every connected socket the broadcast reaches, once.
func (a *adapter) each(opts *socket.BroadcastOptions, fn func(*socket.Socket)) {
	sockets := a.Nsp().Sockets()
	var except *types.Set[socket.SocketId]
	if opts != nil && opts.Except != nil && opts.Except.Len() > 0 {
		for _, room := range opts.Except.Keys() {
			if ids, ok := a.Rooms().Load(room); ok {
				if except == nil {
					except = types.NewSet[socket.SocketId]()
				}
				except.Add(ids.Keys()...)
			}
		}
	}
	reach := func(id socket.SocketId) {
		if except != nil && except.Has(id) {
			return
		}
		if sock, ok := sockets.Load(id); ok && sock.Connected() {
			fn(sock)
		}
	}
	if opts == nil || opts.Rooms == nil || opts.Rooms.Len() == 0 {
		a.Sids().Range(func(id socket.SocketId, _ *types.Set[socket.Room]) bool {
			reach(id)
			return true
		})
		return
	}
	rooms := opts.Rooms.Keys()
	if len(rooms) == 1 { // a socket is in a room once
		if ids, ok := a.Rooms().Load(rooms[0]); ok {
			for _, id := range ids.Keys() {
				reach(id)
			}
		}
		return
	}
	seen := map[socket.SocketId]struct{}{}
	for _, room := range rooms {
		ids, ok := a.Rooms().Load(room)
		if !ok {
			continue
		}
		for _, id := range ids.Keys() {
			if _, dup := seen[id]; !dup {
				seen[id] = struct{}{}
				reach(id)
			}
		}
	}
}
