package ws

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/glowhq/glow/internal/events"
)

// follower follows topics on one socket, for system.subscribe: it replays what the socket
// missed straight to it, then joins it to the topic's room, where the event log delivers,
// with replay_done in between — under the log's lock, so that no live event falls in the
// seam or arrives twice. While it replays, the socket is in the topic's replay room, which
// live delivery of the topic skips: the topic's events that also go to the socket's other
// rooms (its profile's) must not come in the middle of the replay, nor again after it.
type follower struct {
	s    *Server
	sock *socket.Socket

	mu     sync.Mutex
	joined map[string]bool // the topics followed, counted in their audience (Log.Join)
	closed bool            // the socket is gone: it joins nothing any more
}

// join counts the socket in a topic's audience, once.
func (f *follower) join(topic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if f.joined == nil {
		f.joined = map[string]bool{}
	}
	if !f.joined[topic] {
		f.joined[topic] = true
		f.s.events.Join(topic)
	}
}

// leave undoes join; an empty topic leaves them all, for good (the socket is gone).
func (f *follower) leave(topic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = f.closed || topic == ""
	for t := range f.joined {
		if topic == "" || t == topic {
			delete(f.joined, t)
			f.s.events.Leave(t)
		}
	}
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
	// Until the seam, live delivery skips the socket for this topic — through any of its
	// rooms, the topic's own included when it follows again — but not for the others.
	room, replaying := socket.Room(roomOf(topic)), socket.Room(replayRoomOf(topic))
	f.join(topic)
	f.sock.Join(replaying)
	r, err := f.s.events.Attach(ctx, topic, from,
		func(ev events.Event) { _ = f.sock.Emit(ev.Name, ev.Payload()) },
		func(r events.Replay) {
			f.sock.Join(room)
			f.sock.Leave(replaying)
			done, _ := json.Marshal(r)
			_ = f.sock.Emit("replay_done", json.RawMessage(done))
		})
	if err != nil {
		f.sock.Leave(replaying)
		if !f.sock.Rooms().Has(room) {
			f.leave(topic)
		}
	}
	return r, err
}

func (f *follower) Unfollow(topic string) {
	f.sock.Leave(socket.Room(roomOf(topic)))
	f.sock.Leave(socket.Room(replayRoomOf(topic)))
	f.leave(topic)
}
