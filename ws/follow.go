package ws

import (
	"context"
	"encoding/json"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/glowhq/glow/internal/events"
)

// follower follows topics on one socket, for system.subscribe: it replays what the socket
// missed straight to it, then joins it to the topic's room, where the event log delivers,
// with replay_done in between — under the log's lock, so that no live event falls in the
// seam or arrives twice.
type follower struct {
	s    *Server
	sock *socket.Socket
}

func (f *follower) Follow(ctx context.Context, topic string, since *int64) (events.Replay, error) {
	from := int64(0)
	if since != nil {
		from = *since
	} else {
		last, err := f.s.events.LastSeq(ctx, topic)
		if err != nil {
			return events.Replay{}, err
		}
		from = last
	}
	room := socket.Room(roomOf(topic))
	f.sock.Leave(room) // a socket following again must not get live events during its replay
	return f.s.events.Attach(ctx, topic, from,
		func(ev events.Event) { _ = f.sock.Emit(ev.Name, ev.Payload()) },
		func(r events.Replay) {
			f.sock.Join(room)
			done, _ := json.Marshal(r)
			_ = f.sock.Emit("replay_done", json.RawMessage(done))
		})
}

func (f *follower) Unfollow(topic string) { f.sock.Leave(socket.Room(roomOf(topic))) }
