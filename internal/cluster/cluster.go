// Package cluster joins the glow nodes that share one database through Redis. Each node
// sends the events it publishes to the others over one Redis channel, and says which live
// topics it has an audience for, so that a live event travels only where someone listens.
// Durable events always travel: the receiving node's event log orders them by their numbers
// and fills any gap from the database (events.Log.Receive), so Redis only has to be fast,
// not reliable.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/glowhq/glow/internal/events"
)

// Timings of the interest announcements: every node says which live topics it has an
// audience for every announceEvery, and the others forget what a node said after
// interestTTL without hearing it again (the node ended, or lost Redis).
const (
	announceEvery = 2 * time.Second
	interestTTL   = 3 * announceEvery
)

// queueSize bounds the messages waiting to be published; past it new ones are dropped, and
// once Redis keeps up again the other nodes are told to catch up.
const queueSize = 4096

// Bus is one node's connection to the others.
type Bus struct {
	rdb     *redis.Client
	node    string
	channel string
	log     *slog.Logger
	events  *events.Log
	out     chan []byte

	mu     sync.Mutex
	remote map[string]map[string]time.Time // live topic → node → when its interest expires

	lost atomic.Bool // a message could not be published since the last announcement
}

// message is what travels on the channel.
type message struct {
	Node   string      `json:"n"`
	Events []wireEvent `json:"e,omitempty"` // published events
	Wants  []string    `json:"w,omitempty"` // live topics the node has an audience for
	// All says Wants is the node's whole interest, replacing what it said before.
	All bool `json:"a,omitempty"`
	// Resync asks the other nodes to catch up their durable topics from the database:
	// messages of this node may have been lost.
	Resync bool `json:"r,omitempty"`
}

type wireEvent struct {
	Topic string          `json:"t"`
	Name  string          `json:"n"`
	Data  json.RawMessage `json:"d"`
	Also  []string        `json:"a,omitempty"`
	Seq   int64           `json:"s"`
	At    time.Time       `json:"at"`
}

// Open connects to the Redis at url (redis://[user:password@]host:port[/db]) on the
// channel prefix+"events", as node (node.Self) with a suffix of its own, so that two
// servers of one process are two nodes. It fails when Redis does not answer.
func Open(ctx context.Context, url, prefix, node string, log *slog.Logger) (*Bus, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	opt.MaxRetries = 1
	rdb := redis.NewClient(opt)
	ping, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ping).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", opt.Addr, err)
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	return &Bus{rdb: rdb, node: node + "#" + hex.EncodeToString(suffix[:]), channel: prefix + "events", log: log,
		out: make(chan []byte, queueSize), remote: map[string]map[string]time.Time{}}, nil
}

// Ping says whether Redis answers.
func (b *Bus) Ping(ctx context.Context) error { return b.rdb.Ping(ctx).Err() }

// Close closes the connection to Redis. Call it after Run has returned.
func (b *Bus) Close() error { return b.rdb.Close() }

// Attach makes the bus carry log's events: what log publishes goes to the other nodes, and
// what they publish is handed to log. Call it before log publishes anything.
func (b *Bus) Attach(log *events.Log) {
	b.events = log
	log.SetRelay(b)
}

// Send implements events.Relay: it queues the events for the other nodes, without waiting.
func (b *Bus) Send(evs []events.Event) {
	m := message{Events: make([]wireEvent, len(evs))}
	for i, ev := range evs {
		m.Events[i] = wireEvent{Topic: ev.Topic, Name: ev.Name, Data: ev.Data, Also: ev.Also, Seq: ev.Seq, At: ev.At}
	}
	b.queue(m)
}

// Wanted implements events.Relay: whether another node has an audience for a live topic.
func (b *Bus) Wanted(topic string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for _, until := range b.remote[topic] {
		if now.Before(until) {
			return true
		}
	}
	return false
}

// Want implements events.Relay: this node has a new audience for a live topic.
func (b *Bus) Want(topic string) { b.queue(message{Wants: []string{topic}}) }

func (b *Bus) queue(m message) {
	m.Node = b.node
	data, err := json.Marshal(m)
	if err != nil {
		b.log.Error("encode a message for the other nodes", "err", err)
		return
	}
	select {
	case b.out <- data:
	default:
		b.lost.Store(true)
	}
}

// Run publishes what is queued and hands the other nodes' messages to the event log, until
// ctx ends. When the subscription comes back after Redis was lost, the log catches up its
// durable topics from the database.
func (b *Bus) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.publish(ctx) }()
	go func() { defer wg.Done(); b.subscribe(ctx) }()
	wg.Wait()
}

// publish sends the queued messages and the periodic interest announcements. After a
// message was lost it asks the other nodes to catch up, once Redis answers again.
func (b *Bus) publish(ctx context.Context) {
	announce := time.NewTicker(announceEvery)
	defer announce.Stop()
	send := func(data []byte) {
		if err := b.rdb.Publish(ctx, b.channel, data).Err(); err != nil {
			if ctx.Err() == nil && !b.lost.Load() {
				b.log.Warn("redis: publishing to the other nodes fails; they will catch up from the database", "err", err)
			}
			b.lost.Store(true)
			return
		}
	}
	for {
		select {
		case <-ctx.Done():
			// What the node published last still goes out, if Redis answers at once.
			last, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			for {
				select {
				case data := <-b.out:
					if b.rdb.Publish(last, b.channel, data).Err() != nil {
						return
					}
				default:
					return
				}
			}
		case data := <-b.out:
			send(data)
		case <-announce.C:
			m := message{Node: b.node, Wants: b.events.LiveAudience(), All: true, Resync: b.lost.Swap(false)}
			data, _ := json.Marshal(m)
			send(data)
		}
	}
}

// subscribe receives the other nodes' messages. go-redis resubscribes by itself after a
// lost connection; each subscription after the first means messages may have been missed.
func (b *Bus) subscribe(ctx context.Context) {
	ps := b.rdb.Subscribe(ctx, b.channel)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() }) // Receive does not end with ctx
	defer stop()
	subscribed := 0
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !errors.Is(err, redis.ErrClosed) {
				b.log.Debug("redis: receive", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed++; subscribed > 1 {
					b.log.Info("redis: subscribed again; catching up from the database")
					b.events.Resync()
				}
			}
		case *redis.Message:
			b.handle([]byte(m.Payload))
		}
	}
}

func (b *Bus) handle(data []byte) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		b.log.Warn("redis: a message that is not glow's", "err", err)
		return
	}
	if m.Node == b.node {
		return
	}
	if m.Wants != nil || m.All {
		b.interest(m.Node, m.Wants, m.All)
	}
	if m.Resync {
		b.events.Resync()
	}
	if len(m.Events) > 0 {
		evs := make([]events.Event, len(m.Events))
		for i, w := range m.Events {
			evs[i] = events.Event{Topic: w.Topic, Name: w.Name, Data: w.Data, Also: w.Also, Seq: w.Seq, At: w.At}
		}
		b.events.Receive(evs)
	}
}

// interest records what a node has an audience for; all replaces what it said before.
func (b *Bus) interest(node string, topics []string, all bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	until := now.Add(interestTTL)
	if all {
		for topic, nodes := range b.remote {
			if _, ok := nodes[node]; ok {
				delete(nodes, node)
			}
			for n, t := range nodes {
				if now.After(t) {
					delete(nodes, n)
				}
			}
			if len(nodes) == 0 {
				delete(b.remote, topic)
			}
		}
	}
	for _, topic := range topics {
		if b.remote[topic] == nil {
			b.remote[topic] = map[string]time.Time{}
		}
		b.remote[topic][node] = until
	}
}
