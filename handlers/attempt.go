package handlers

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// AttemptStart starts an attempt with a persona the caller can see and opens its chat.
func (s *Service) AttemptStart(ctx context.Context, in *gen.AttemptStartRequest) (*gen.AttemptStartResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	a := store.Attempt{ID: store.NewID(), ProfileID: id.ProfileID, PersonaID: in.PersonaId, CreatedAt: now}
	c := store.Chat{ID: store.NewID(), AttemptID: a.ID, PersonaID: in.PersonaId, ProfileID: id.ProfileID, CreatedAt: now}
	err = s.store.Tx(ctx, func(q store.Q) error {
		if _, err := visiblePersona(ctx, q, id, in.PersonaId); err != nil {
			return err
		}
		if err := q.InsertAttempt(ctx, a); err != nil {
			return err
		}
		if err := q.InsertChat(ctx, c); err != nil {
			return err
		}
		return q.IncrementPersonaAttempts(ctx, in.PersonaId)
	})
	if err != nil {
		return nil, err
	}
	return &gen.AttemptStartResponse{AttemptId: a.ID, ChatId: c.ID, PersonaId: a.PersonaID, CreatedAt: utc(now),
		IdempotencyKey: in.IdempotencyKey}, nil
}

// ownChat loads a chat the caller may read: their own, or any for level 0.
func ownChat(ctx context.Context, q store.Q, id *auth.Identity, chatID uuid.UUID, write bool) (store.Chat, error) {
	c, err := q.ChatByID(ctx, chatID)
	if err != nil {
		return c, notFound(err, "chat", chatID)
	}
	if c.ProfileID != id.ProfileID && (write || id.Level != 0) {
		return c, problem.Forbidden("chat %s belongs to another profile", chatID)
	}
	return c, nil
}

// AttemptChatMessage appends the learner's message to their chat and starts the persona's
// reply, which streams on the attempt's topic.
func (s *Service) AttemptChatMessage(ctx context.Context, in *gen.AttemptChatMessageRequest) (*gen.AttemptChatMessageResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := store.Message{ChatID: in.ChatId, Role: string(gen.ChatRoleUser), Text: in.Text, ParentID: in.ParentMessageId}
	var chat store.Chat
	var run store.Run
	err = s.store.Tx(ctx, func(q store.Q) error {
		var err error
		if chat, err = ownChat(ctx, q, id, in.ChatId, true); err != nil {
			return err
		}
		if m.ParentID != nil {
			parent, err := q.MessageByID(ctx, *m.ParentID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && parent.ChatID != in.ChatId) {
				return problem.NotFound("message %s not found in chat %s", *m.ParentID, in.ChatId)
			}
			if err != nil {
				return err
			}
		} else if last, err := q.LastMessage(ctx, in.ChatId); err == nil {
			m.ParentID = &last.ID
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.AppendMessage(ctx, &m); err != nil {
			return err
		}
		// Counted after the message is appended, which locks the chat's row: concurrent
		// messages of one chat count each other's replies.
		switch n, err := q.CountActiveRunsOn(ctx, chat.ID, kindChatReply); {
		case err != nil:
			return err
		case n >= s.limits.ChatReplies:
			return problem.TooManyRequests(retryRuns,
				"%d replies of chat %s are still waiting or being generated; send this message again once one has ended", n, chat.ID)
		}
		// The reply's run is stored with the message, and the message's event too: all or none.
		reply, input := replyRun(chat, &m.ID)
		if run, err = s.submitRun(ctx, q, id, reply, input, nil, nil); err != nil {
			return err
		}
		return s.events.Stage(ctx, q, messageEvent(events.AttemptTopic(chat.AttemptID), id.ProfileID, messageOut(m)))
	})
	if err != nil {
		return nil, err
	}
	out := &gen.AttemptChatMessageResponse{Success: true, ChatId: in.ChatId, Message: messageOut(m), IdempotencyKey: in.IdempotencyKey,
		ReplyRunId: &run.ID}
	s.runner.Execute(run)
	return out, nil
}

// AttemptChatGet returns a chat, a page of its messages (the latest ones by default) and the
// reply still being generated, if any, with the attempt topic's number at the time:
// following the topic from that number misses nothing and repeats nothing.
func (s *Service) AttemptChatGet(ctx context.Context, in *gen.AttemptChatGetRequest) (*gen.AttemptChatGetResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	c, err := ownChat(ctx, q, id, in.ChatId, false)
	if err != nil {
		return nil, err
	}
	topic := events.AttemptTopic(c.AttemptID)
	// The topic's number first: the reply's text is read up to it, and what follows it is in
	// the topic's events. A message stored meanwhile may be both here and in an event: the
	// message id tells.
	_, last, err := q.TopicBounds(ctx, topic)
	if err != nil {
		return nil, err
	}
	limit, before := 100, 0
	if in.Limit != nil {
		limit = *in.Limit
	}
	if in.BeforeSeq != nil {
		before = *in.BeforeSeq
	}
	ms, more, err := q.ChatMessagesBefore(ctx, c.ID, before, limit)
	if err != nil {
		return nil, err
	}
	out := &gen.AttemptChatGetResponse{
		Chat:     gen.Chat{Id: c.ID, AttemptId: c.AttemptID, PersonaId: c.PersonaID, ProfileId: c.ProfileID, CreatedAt: utc(c.CreatedAt)},
		Messages: make([]gen.ChatMessage, len(ms)),
		HasMore:  more,
		Topic:    topic,
		LastSeq:  int(last),
	}
	for i, m := range ms {
		out.Messages[i] = messageOut(m)
	}
	run, err := q.ActiveRunOn(ctx, c.ID, kindChatReply)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	text, seq, err := jobs.RunTextSeq(ctx, q, run, last)
	if err != nil {
		return nil, err
	}
	out.Reply = &gen.StreamingReply{RunId: run.ID, Status: gen.RunStatus(run.Status), Text: text, LastSeq: int(seq)}
	return out, nil
}

func messageOut(m store.Message) gen.ChatMessage {
	return gen.ChatMessage{Id: m.ID, ChatId: m.ChatID, Seq: m.Seq, Role: gen.ChatRole(m.Role), Text: m.Text,
		ParentMessageId: m.ParentID, CreatedAt: utc(m.CreatedAt)}
}
