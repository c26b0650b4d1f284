// Package handlers is glow's business logic: one method per operation of openapi.yaml,
// called alike by the HTTP and socket.io transports. Handlers read the caller from the
// context and answer with generated types or problem errors; they know nothing of transports.
package handlers

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// Service implements every operation.
type Service struct {
	gen.FamilyOperations // the standard operations of agent, tool, … (family.go)

	store    *store.Store
	runner   *jobs.Runner
	events   *events.Log
	presence Presence
	door     Door
	started  time.Time
	limits   Limits
}

// Door is the spec's check of requests, which the dispatcher applies to every call; the
// handlers apply it to what a model proposes as well.
type Door interface {
	Version() string
	ValidateRequest(opID string, body any) []problem.Detail
}

// Presence tells who is online on this server.
type Presence interface {
	Online() map[uuid.UUID]int // open sockets per profile
}

var _ gen.Handlers = (*Service)(nil)

// Limits bound the work one caller can queue.
type Limits struct {
	// ChatReplies is how many replies of one chat may be waiting or generating at once
	// (default 3): a message beyond it is refused with 429.
	ChatReplies int
	// ProfileRuns is how many runs of one profile may be queued, running or paused at once
	// (default 16): a run beyond it is refused with 429.
	ProfileRuns int
}

func (l *Limits) defaults() {
	if l.ChatReplies <= 0 {
		l.ChatReplies = 3
	}
	if l.ProfileRuns <= 0 {
		l.ProfileRuns = 16
	}
}

// New returns the service; version is reported by system.health. It registers the kinds of
// generation runs with the runner.
func New(s *store.Store, runner *jobs.Runner, ev *events.Log, presence Presence, door Door, limits Limits) *Service {
	limits.defaults()
	svc := &Service{store: s, runner: runner, events: ev, presence: presence, door: door, started: time.Now(), limits: limits}
	svc.FamilyOperations = gen.FamilyOperations{Family: family{s: svc}}
	runner.Register(kindChatReply, chatReply{svc})
	runner.Register(kindText, textAnswer{svc})
	runner.Register(kindRecordDraft, recordDraft{family{s: svc}})
	return svc
}

// caller returns the identity the transport resolved. Every operation that needs one is
// declared with security in the spec, so the dispatcher has already refused calls without.
func caller(ctx context.Context) (*auth.Identity, error) {
	id := auth.FromContext(ctx)
	if id == nil {
		return nil, problem.Unauthorized("a bearer token is required")
	}
	return id, nil
}

// notFound maps store.ErrNotFound to a 404 problem naming what was looked up.
func notFound(err error, what string, id uuid.UUID) error {
	if errors.Is(err, store.ErrNotFound) {
		return problem.NotFound("%s %s not found", what, id)
	}
	return err
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// utc puts a stored time in UTC, so that every response writes times with a Z.
func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return ptr(t.UTC())
}

// ids returns a non-nil slice (an empty JSON array, never null).
func ids(in []uuid.UUID) []uuid.UUID {
	if in == nil {
		return []uuid.UUID{}
	}
	return in
}
