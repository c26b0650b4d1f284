package store

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Attempt is one practice session of a learner with a persona.
type Attempt struct {
	ID          uuid.UUID  `db:"id"`
	ProfileID   uuid.UUID  `db:"profile_id"`
	PersonaID   uuid.UUID  `db:"persona_id"`
	CreatedAt   time.Time  `db:"created_at"`
	CompletedAt *time.Time `db:"completed_at"`
}

// Chat is a conversation inside an attempt.
type Chat struct {
	ID        uuid.UUID `db:"id"`
	AttemptID uuid.UUID `db:"attempt_id"`
	PersonaID uuid.UUID `db:"persona_id"`
	ProfileID uuid.UUID `db:"profile_id"`
	CreatedAt time.Time `db:"created_at"`
}

// Message is one turn of a chat; Seq orders a chat's messages from 1.
type Message struct {
	ID        uuid.UUID  `db:"id"`
	ChatID    uuid.UUID  `db:"chat_id"`
	Seq       int        `db:"seq"`
	Role      string     `db:"role"`
	Text      string     `db:"text"`
	ParentID  *uuid.UUID `db:"parent_id"`
	CreatedAt time.Time  `db:"created_at"`
}

// InsertAttempt stores an attempt.
func (q Q) InsertAttempt(ctx context.Context, a Attempt) error {
	_, err := q.exec(ctx, `INSERT INTO attempts (id, profile_id, persona_id, created_at) VALUES (?, ?, ?, ?)`,
		a.ID, a.ProfileID, a.PersonaID, a.CreatedAt)
	return err
}

// AttemptByID finds an attempt.
func (q Q) AttemptByID(ctx context.Context, id uuid.UUID) (Attempt, error) {
	var a Attempt
	err := q.get(ctx, &a, `SELECT id, profile_id, persona_id, created_at, completed_at FROM attempts WHERE id = ?`, id)
	return a, err
}

// InsertChat stores a chat.
func (q Q) InsertChat(ctx context.Context, c Chat) error {
	_, err := q.exec(ctx, `INSERT INTO chats (id, attempt_id, persona_id, profile_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.AttemptID, c.PersonaID, c.ProfileID, c.CreatedAt)
	return err
}

// ChatByID finds a chat.
func (q Q) ChatByID(ctx context.Context, id uuid.UUID) (Chat, error) {
	var c Chat
	err := q.get(ctx, &c, `SELECT id, attempt_id, persona_id, profile_id, created_at FROM chats WHERE id = ?`, id)
	return c, err
}

const messageColumns = `id, chat_id, seq, role, text, parent_id, created_at`

// AppendMessage adds a message after the chat's last one, filling in its ID, Seq and
// CreatedAt. Call it inside a transaction: bumping the chat's message count locks the chat
// row, so concurrent appends to one chat queue up and get consecutive numbers.
func (q Q) AppendMessage(ctx context.Context, m *Message) error {
	var seq int
	if err := q.get(ctx, &seq, `UPDATE chats SET message_count = message_count + 1 WHERE id = ? RETURNING message_count`, m.ChatID); err != nil {
		return err
	}
	m.ID, m.Seq, m.CreatedAt = NewID(), seq, Now()
	_, err := q.exec(ctx, `INSERT INTO messages (id, chat_id, seq, role, text, parent_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.ChatID, m.Seq, m.Role, m.Text, m.ParentID, m.CreatedAt)
	return err
}

// MessageByID finds a message.
func (q Q) MessageByID(ctx context.Context, id uuid.UUID) (Message, error) {
	var m Message
	err := q.get(ctx, &m, `SELECT `+messageColumns+` FROM messages WHERE id = ?`, id)
	return m, err
}

// LastMessage returns a chat's latest message.
func (q Q) LastMessage(ctx context.Context, chatID uuid.UUID) (Message, error) {
	var m Message
	err := q.get(ctx, &m, `SELECT `+messageColumns+` FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT 1`, chatID)
	return m, err
}

// ChatMessages lists a chat's messages in order.
func (q Q) ChatMessages(ctx context.Context, chatID uuid.UUID) ([]Message, error) {
	var ms []Message
	err := q.sel(ctx, &ms, `SELECT `+messageColumns+` FROM messages WHERE chat_id = ? ORDER BY seq`, chatID)
	return ms, err
}

// ChatMessagesBefore returns a chat's latest limit messages numbered below before (0: the
// latest of all), oldest first, and whether older ones exist.
func (q Q) ChatMessagesBefore(ctx context.Context, chatID uuid.UUID, before, limit int) ([]Message, bool, error) {
	if before <= 0 {
		before = math.MaxInt32
	}
	var ms []Message
	err := q.sel(ctx, &ms, `SELECT `+messageColumns+` FROM messages WHERE chat_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		chatID, before, limit+1)
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	slices.Reverse(ms)
	return ms, more, err
}
