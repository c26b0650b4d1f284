package handlers

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// ownRun loads a run of the caller (any run, for level 0).
func ownRun(ctx context.Context, q store.Q, id *auth.Identity, runID uuid.UUID) (store.Run, error) {
	r, err := q.RunByID(ctx, runID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && r.ProfileID != id.ProfileID && id.Level != 0) {
		return r, problem.NotFound("run %s not found among your runs", runID)
	}
	return r, err
}

// runControl applies a control operation of the runner to one of the caller's runs.
func (s *Service) runControl(ctx context.Context, runID uuid.UUID, op func(context.Context, uuid.UUID) (store.Run, error)) (*gen.RunResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := ownRun(ctx, s.store.Q(), id, runID); err != nil {
		return nil, err
	}
	r, err := op(ctx, runID)
	if err != nil {
		return nil, err
	}
	return &gen.RunResponse{Run: runOut(r, r.Output)}, nil
}

// SystemRunGet returns a run with the text it has generated so far.
func (s *Service) SystemRunGet(ctx context.Context, in *gen.RunRequest) (*gen.RunResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	r, err := ownRun(ctx, q, id, in.RunId)
	if err != nil {
		return nil, err
	}
	text := r.Output
	if !store.RunFinished(r.Status) {
		if text, err = jobs.RunText(ctx, q, r); err != nil {
			return nil, err
		}
	}
	return &gen.RunResponse{Run: runOut(r, text)}, nil
}

// SystemRunStop stops a run.
func (s *Service) SystemRunStop(ctx context.Context, in *gen.RunRequest) (*gen.RunResponse, error) {
	return s.runControl(ctx, in.RunId, s.runner.Stop)
}

// SystemRunPause pauses a run.
func (s *Service) SystemRunPause(ctx context.Context, in *gen.RunRequest) (*gen.RunResponse, error) {
	return s.runControl(ctx, in.RunId, s.runner.Pause)
}

// SystemRunResume resumes a paused run.
func (s *Service) SystemRunResume(ctx context.Context, in *gen.RunRequest) (*gen.RunResponse, error) {
	return s.runControl(ctx, in.RunId, s.runner.Resume)
}

// SystemRunAnswer answers the question of an interrupted run.
func (s *Service) SystemRunAnswer(ctx context.Context, in *gen.SystemRunAnswerRequest) (*gen.RunResponse, error) {
	return s.runControl(ctx, in.RunId, func(ctx context.Context, id uuid.UUID) (store.Run, error) {
		return s.runner.Answer(ctx, id, in.Answer)
	})
}

// AuthorizeTopic reports whether the caller may follow a topic: profile/<id>, attempt/<id>
// and run/<id> are their owner's (and level 0's), system/metrics is level 0's.
func (s *Service) AuthorizeTopic(ctx context.Context, topic string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	if topic == events.MetricsTopic {
		if id.Level != 0 {
			return problem.Forbidden("only level 0 may follow %s", topic)
		}
		return nil
	}
	kind, rest, _ := strings.Cut(topic, "/")
	subject, err := uuid.Parse(rest)
	if err != nil {
		return problem.Invalid("validation failed", problem.Detail{Location: "topic", Message: "unknown topic", Value: topic})
	}
	owner := subject
	q := s.store.Q()
	switch kind {
	case "profile":
	case "attempt":
		a, err := q.AttemptByID(ctx, subject)
		if err != nil {
			return notFound(err, "attempt", subject)
		}
		owner = a.ProfileID
	case "run":
		r, err := q.RunByID(ctx, subject)
		if err != nil {
			return notFound(err, "run", subject)
		}
		owner = r.ProfileID
	default:
		return problem.Invalid("validation failed", problem.Detail{Location: "topic", Message: "unknown topic", Value: topic})
	}
	if owner != id.ProfileID && id.Level != 0 {
		return problem.Forbidden("topic %s belongs to another profile", topic)
	}
	return nil
}

// needFollower returns the socket a subscription is for: subscriptions live on a socket.io
// connection, and HTTP has none.
func needFollower(ctx context.Context) (events.Follower, error) {
	f := events.FollowerFrom(ctx)
	if f == nil {
		return nil, problem.BadRequest("subscriptions need a socket.io connection; over HTTP, follow a topic with GET /<artifact>/stream")
	}
	return f, nil
}

// SystemSubscribe replays and follows topics on the calling socket.
func (s *Service) SystemSubscribe(ctx context.Context, in *gen.SystemSubscribeRequest) (*gen.SystemSubscribeResponse, error) {
	f, err := needFollower(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Topics {
		if err := s.AuthorizeTopic(ctx, t.Topic); err != nil {
			return nil, err
		}
	}
	out := &gen.SystemSubscribeResponse{Subscriptions: make([]gen.ReplayDone, len(in.Topics))}
	for i, t := range in.Topics {
		r, err := f.Follow(ctx, t.Topic, int64Ptr(t.Since))
		if err != nil {
			return nil, err
		}
		out.Subscriptions[i] = replayOut(r)
	}
	return out, nil
}

// SystemUnsubscribe stops following topics on the calling socket.
func (s *Service) SystemUnsubscribe(ctx context.Context, in *gen.SystemUnsubscribeRequest) (*gen.SystemUnsubscribeResponse, error) {
	f, err := needFollower(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range in.Topics {
		f.Unfollow(t)
	}
	return &gen.SystemUnsubscribeResponse{Topics: in.Topics}, nil
}

func replayOut(r events.Replay) gen.ReplayDone {
	return gen.ReplayDone{Topic: r.Topic, Since: int(r.Since), LastSeq: int(r.Last), Replayed: r.Replayed, Truncated: r.Truncated}
}

func int64Ptr(p *int) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

// presenceScope is the department filter of an activity query: nil (everyone) for level 0.
func presenceScope(id *auth.Identity) []uuid.UUID {
	if id.Level == 0 {
		return nil
	}
	return ids(id.DepartmentIDs)
}

// SystemActivity says who is online now, and what problems were reported, in the caller's scope.
func (s *Service) SystemActivity(ctx context.Context, in *gen.SystemActivityRequest) (*gen.SystemActivityResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	q := s.store.Q()
	scope := presenceScope(id)
	recent, _, err := q.SearchPresence(ctx, store.PresenceFilter{DepartmentIDs: scope}, 20, 0)
	if err != nil {
		return nil, err
	}
	out := &gen.SystemActivityResponse{Recent: make([]gen.Presence, len(recent))}
	for i, p := range recent {
		out.Recent[i] = presenceOut(p)
	}
	if out.Problems, out.ProblemsCount, err = s.problems(ctx, q, id, in); err != nil {
		return nil, err
	}
	online := s.presence.Online()
	var visible map[uuid.UUID]bool
	if scope != nil {
		profiles := make([]uuid.UUID, 0, len(online))
		for profile := range online {
			profiles = append(profiles, profile)
		}
		inScope, err := q.ProfilesInDepartments(ctx, profiles, scope)
		if err != nil {
			return nil, err
		}
		visible = map[uuid.UUID]bool{}
		for _, profile := range inScope {
			visible[profile] = true
		}
	}
	for profile, n := range online {
		if visible == nil || visible[profile] {
			out.ActiveProfilesCount++
			out.SocketsCount += n
		}
	}
	return out, nil
}

// SystemActivitySearch lists profiles by their latest presence change.
func (s *Service) SystemActivitySearch(ctx context.Context, in *gen.SystemActivitySearchRequest) (*gen.SystemActivitySearchResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f := store.PresenceFilter{Text: strings.TrimSpace(deref(in.Search)), DepartmentIDs: presenceScope(id)}
	if in.State != nil {
		f.State = string(*in.State)
	}
	ps, total, err := s.store.Q().SearchPresence(ctx, f, deref(in.PageSize), deref(in.PageOffset))
	if err != nil {
		return nil, err
	}
	out := &gen.SystemActivitySearchResponse{Profiles: make([]gen.Presence, len(ps)), TotalCount: total,
		PageSize: deref(in.PageSize), PageOffset: deref(in.PageOffset)}
	for i, p := range ps {
		out.Profiles[i] = presenceOut(p)
	}
	return out, nil
}

func presenceOut(p store.Presence) gen.Presence {
	return gen.Presence{ProfileId: p.ProfileID, ProfileName: p.ProfileName, Role: p.Role,
		State: gen.PresenceState(p.State), Sockets: p.Sockets, Since: utc(p.Since)}
}
