package store

import (
	"context"
	"strings"
	"time"
)

// Event is a pushed event as the log keeps it: numbered within its topic from 1.
type Event struct {
	Topic     string    `db:"topic"`
	Seq       int64     `db:"seq"`
	Name      string    `db:"name"`
	Data      []byte    `db:"data"` // JSON
	CreatedAt time.Time `db:"created_at"`
}

// AppendEvents numbers events and stores them, in order. Each event's Seq is set to the
// next number of its topic. Call it inside a transaction: bumping a topic's last number
// locks the topic's row, so concurrent writers of one topic get consecutive numbers.
func (q Q) AppendEvents(ctx context.Context, evs []Event) error {
	counts := map[string]int64{}
	var order []string
	for _, ev := range evs {
		if counts[ev.Topic] == 0 {
			order = append(order, ev.Topic)
		}
		counts[ev.Topic]++
	}
	next := make(map[string]int64, len(order))
	for _, topic := range order {
		if _, err := q.exec(ctx, `INSERT INTO topics (topic, last_seq) VALUES (?, 0) ON CONFLICT (topic) DO NOTHING`, topic); err != nil {
			return err
		}
		var last int64
		if err := q.get(ctx, &last, `UPDATE topics SET last_seq = last_seq + ? WHERE topic = ? RETURNING last_seq`, counts[topic], topic); err != nil {
			return err
		}
		next[topic] = last - counts[topic] + 1
	}
	for i := range evs {
		evs[i].Seq = next[evs[i].Topic]
		next[evs[i].Topic]++
	}
	// Insert in batches: one statement per batch keeps a burst of deltas cheap.
	const batch = 100
	for start := 0; start < len(evs); start += batch {
		part := evs[start:min(start+batch, len(evs))]
		var sb strings.Builder
		args := make([]any, 0, len(part)*5)
		sb.WriteString(`INSERT INTO events (topic, seq, name, data, created_at) VALUES `)
		for i, ev := range part {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, ev.Topic, ev.Seq, ev.Name, string(ev.Data), ev.CreatedAt)
		}
		if _, err := q.exec(ctx, sb.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// EventsAfter returns up to limit events of a topic numbered above since, in order.
func (q Q) EventsAfter(ctx context.Context, topic string, since int64, limit int) ([]Event, error) {
	var evs []Event
	err := q.sel(ctx, &evs, `SELECT topic, seq, name, data, created_at FROM events
		WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?`, topic, since, limit)
	return evs, err
}

// EventsFrom returns up to limit events of a topic stored at or after t and numbered above
// after, in order.
func (q Q) EventsFrom(ctx context.Context, topic string, t time.Time, after int64, limit int) ([]Event, error) {
	var evs []Event
	err := q.sel(ctx, &evs, `SELECT topic, seq, name, data, created_at FROM events
		WHERE topic = ? AND created_at >= ? AND seq > ? ORDER BY seq LIMIT ?`, topic, t, after, limit)
	return evs, err
}

// TopicBounds returns the first kept and the last number of a topic (0, 0 for a topic
// without events). The first is above 1 once retention has removed older events.
func (q Q) TopicBounds(ctx context.Context, topic string) (first, last int64, err error) {
	err = q.get(ctx, &last, `SELECT COALESCE((SELECT last_seq FROM topics WHERE topic = ?), 0)`, topic)
	if err != nil || last == 0 {
		return 0, last, err
	}
	err = q.get(ctx, &first, `SELECT COALESCE(MIN(seq), ?) FROM events WHERE topic = ?`, last+1, topic)
	return first, last, err
}

// PurgeEvents deletes the events created before t; topics keep their numbering.
func (q Q) PurgeEvents(ctx context.Context, t time.Time) (int64, error) {
	return q.exec(ctx, `DELETE FROM events WHERE created_at < ?`, t)
}
