package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/events"
	"github.com/glowhq/glow/internal/jobs"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// The kinds of generation runs.
const (
	kindChatReply = "chat_reply" // the persona's next reply in a chat
	kindText      = "text"       // an answer to instructions about an artifact
)

// runIn is what a run keeps of its request (runs.input).
type runIn struct {
	Instructions []string   `json:"instructions,omitempty"`
	ChatID       *uuid.UUID `json:"chat_id,omitempty"`
	// MessageID is the message a chat reply answers: its prompt is the chat up to it, the
	// same whenever it is built (after a restart too, with later messages in the chat).
	MessageID *uuid.UUID `json:"message_id,omitempty"`
	Apply     bool       `json:"apply,omitempty"`
}

// startRun checks the model and group a caller names, stores the run and starts it.
func (s *Service) startRun(ctx context.Context, id *auth.Identity, run store.Run, in runIn, modelID, groupID *uuid.UUID) (store.Run, error) {
	run, err := s.submitRun(ctx, s.store.Q(), id, run, in, modelID, groupID)
	if err != nil {
		return run, err
	}
	s.runner.Execute(run)
	return run, nil
}

// submitRun stores a new queued run with q, for the caller to Execute once q's transaction
// (if any) has committed.
func (s *Service) submitRun(ctx context.Context, q store.Q, id *auth.Identity, run store.Run, in runIn, modelID, groupID *uuid.UUID) (store.Run, error) {
	if modelID != nil {
		if _, err := q.ModelByID(ctx, *modelID); err != nil {
			return run, notFound(err, "model", *modelID)
		}
	}
	if groupID != nil {
		g, err := q.GroupByID(ctx, *groupID)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (g.ProfileID != id.ProfileID || g.Artifact != run.Artifact)) {
			return run, problem.NotFound("%s group %s not found among your groups", run.Artifact, *groupID)
		}
		if err != nil {
			return run, err
		}
	}
	switch n, err := q.CountActiveRuns(ctx, id.ProfileID); {
	case err != nil:
		return run, err
	case n >= s.limits.ProfileRuns:
		return run, problem.TooManyRequests(retryRuns,
			"you already have %d runs queued, running or paused; wait for some to end, or stop some", n)
	}
	input, err := json.Marshal(in)
	if err != nil {
		return run, err
	}
	run.ProfileID, run.ModelID, run.GroupID, run.Input = id.ProfileID, modelID, groupID, input
	return s.runner.Submit(ctx, q, run)
}

// retryRuns is the Retry-After of a run refused for the caller's runs in progress: about
// the time a reply takes.
const retryRuns = 5

func generated(run store.Run, key *string) *gen.GenerateResponse {
	return &gen.GenerateResponse{Run: runOut(run, run.Output), IdempotencyKey: key}
}

// AttemptGenerate starts a run generating the persona's next reply in a chat.
func (s *Service) AttemptGenerate(ctx context.Context, in *gen.AttemptGenerateRequest) (*gen.GenerateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := ownChat(ctx, s.store.Q(), id, in.ChatId, true)
	if err != nil {
		return nil, err
	}
	if active, err := s.store.Q().ActiveRunOn(ctx, c.ID, kindChatReply); err == nil {
		return nil, problem.Conflict("a reply for chat %s is already being generated (run %s)", c.ID, active.ID)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	run, err := s.startReply(ctx, id, c, in.ModelId)
	if err != nil {
		return nil, err
	}
	return generated(run, in.IdempotencyKey), nil
}

// startReply starts the run of a chat's next reply, answering its latest message; its
// events go to the attempt's topic.
func (s *Service) startReply(ctx context.Context, id *auth.Identity, c store.Chat, modelID *uuid.UUID) (store.Run, error) {
	var answers *uuid.UUID
	if last, err := s.store.Q().LastMessage(ctx, c.ID); err == nil {
		answers = &last.ID
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Run{}, err
	}
	run, in := replyRun(c, answers)
	return s.startRun(ctx, id, run, in, modelID, nil)
}

// replyInput reads a chat reply's input, which the handlers wrote.
func replyInput(run store.Run) runIn {
	var in runIn
	_ = json.Unmarshal(run.Input, &in)
	return in
}

// replyRun is the run of a chat's reply to a message (nil: to the chat as it is when the
// run starts) and its input.
func replyRun(c store.Chat, answers *uuid.UUID) (store.Run, runIn) {
	return store.Run{Artifact: "attempt", Kind: kindChatReply, SubjectID: &c.ID, Topic: events.AttemptTopic(c.AttemptID)},
		runIn{ChatID: &c.ID, MessageID: answers}
}

// textRun starts a run answering instructions about an artifact (or one record of it).
func (s *Service) textRun(ctx context.Context, artifact string, in *gen.GenerateRequest) (*gen.GenerateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if in.SubjectId != nil {
		if _, err := s.describe(ctx, id, artifact, *in.SubjectId); err != nil {
			return nil, err
		}
	}
	run, err := s.startRun(ctx, id, store.Run{Artifact: artifact, Kind: kindText, SubjectID: in.SubjectId},
		runIn{Instructions: in.Instructions}, in.ModelId, in.GroupId)
	if err != nil {
		return nil, err
	}
	return generated(run, in.IdempotencyKey), nil
}

// ProfileGenerate answers instructions about profiles.
func (s *Service) ProfileGenerate(ctx context.Context, in *gen.GenerateRequest) (*gen.GenerateResponse, error) {
	return s.textRun(ctx, "profile", in)
}

// SystemGenerate answers instructions about the system.
func (s *Service) SystemGenerate(ctx context.Context, in *gen.GenerateRequest) (*gen.GenerateResponse, error) {
	return s.textRun(ctx, "system", in)
}

// describe returns what a text run should know of the record subjectID of an artifact:
// "Label: value" lines. It is also the check that the caller may see that record.
func (s *Service) describe(ctx context.Context, id *auth.Identity, artifact string, subjectID uuid.UUID) ([][2]string, error) {
	q := s.store.Q()
	switch artifact {
	case "profile":
		if subjectID != id.ProfileID && id.Level != 0 {
			return nil, problem.Forbidden("only level 0 may ask about another profile")
		}
		p, err := q.ProfileByID(ctx, subjectID)
		if err != nil {
			return nil, notFound(err, "profile", subjectID)
		}
		return [][2]string{{"Profile", p.Name}, {"Role", p.Role}}, nil
	}
	return nil, problem.Invalid("validation failed", problem.Detail{Location: "body.subject_id",
		Message: fmt.Sprintf("%s runs take no subject", artifact), Value: subjectID.String()})
}

// AttemptGenerations lists the caller's attempt runs (chat replies).
func (s *Service) AttemptGenerations(ctx context.Context, in *gen.GenerationsRequest) (*gen.GenerationsResponse, error) {
	return s.generations(ctx, "attempt", in)
}

// ProfileGenerations lists the caller's profile runs.
func (s *Service) ProfileGenerations(ctx context.Context, in *gen.GenerationsRequest) (*gen.GenerationsResponse, error) {
	return s.generations(ctx, "profile", in)
}

// SystemGenerations lists the caller's system runs.
func (s *Service) SystemGenerations(ctx context.Context, in *gen.GenerationsRequest) (*gen.GenerationsResponse, error) {
	return s.generations(ctx, "system", in)
}

func (s *Service) generations(ctx context.Context, artifact string, in *gen.GenerationsRequest) (*gen.GenerationsResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f := store.RunFilter{ProfileID: id.ProfileID, Artifact: artifact, Text: strings.TrimSpace(deref(in.Search)), From: in.DateFrom, To: in.DateTo}
	runs, total, err := s.store.Q().ListRuns(ctx, f, deref(in.PageLimit), deref(in.PageOffset))
	if err != nil {
		return nil, err
	}
	out := &gen.GenerationsResponse{Runs: make([]gen.Run, len(runs)), TotalCount: total}
	for i, r := range runs {
		out.Runs[i] = runOut(r, r.Output)
	}
	return out, nil
}

// PersonaWatch waits for persona runs.
func (s *Service) PersonaWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "persona", in)
}

// AttemptWatch waits for attempt runs.
func (s *Service) AttemptWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "attempt", in)
}

// ProfileWatch waits for profile runs.
func (s *Service) ProfileWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "profile", in)
}

// SystemWatch waits for system runs.
func (s *Service) SystemWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "system", in)
}

// ProviderWatch waits for provider runs.
func (s *Service) ProviderWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "provider", in)
}

// ModelWatch waits for model runs.
func (s *Service) ModelWatch(ctx context.Context, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	return s.watch(ctx, "model", in)
}

// watchPoll bounds how long a watch waits for a change it was not told about (a run that
// another server executes).
const watchPoll = time.Second

// watch waits until every run has ended or asks a question, or until the timeout.
func (s *Service) watch(ctx context.Context, artifact string, in *gen.WatchRequest) (*gen.WatchResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	timeout := time.Duration(deref(in.TimeoutSeconds)) * time.Second
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		changed := s.runner.Changed()
		runs, err := s.store.Q().RunsByIDs(ctx, in.RunIds)
		if err != nil {
			return nil, err
		}
		byID := map[uuid.UUID]store.Run{}
		for _, r := range runs {
			byID[r.ID] = r
		}
		out := &gen.WatchResponse{Runs: make([]gen.Run, len(in.RunIds))}
		settled := true
		for i, runID := range in.RunIds {
			r, ok := byID[runID]
			if !ok || r.Artifact != artifact || (r.ProfileID != id.ProfileID && id.Level != 0) {
				return nil, problem.NotFound("run %s not found among your %s runs", runID, artifact)
			}
			out.Runs[i] = runOut(r, r.Output)
			settled = settled && (store.RunFinished(r.Status) || r.Status == store.RunInterrupted)
		}
		out.WaitedSeconds = time.Since(start).Seconds()
		if settled {
			// The runs' last events are published before their end is told: once they are
			// stored too, a watcher may replay the run's topic and find its end there.
			if err := s.events.Synced(ctx); err != nil {
				return nil, err
			}
			return out, nil
		}
		select {
		case <-changed:
		case <-time.After(watchPoll):
		case <-deadline.C:
			out.TimedOut = true
			out.WaitedSeconds = time.Since(start).Seconds()
			return out, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// runOut describes a run with the text it has so far.
func runOut(r store.Run, text string) gen.Run {
	out := gen.Run{
		Id: r.ID, Artifact: r.Artifact, Kind: gen.RunKind(r.Kind), Status: gen.RunStatus(r.Status), Progress: r.Progress,
		Topic: r.Topic, SubjectId: r.SubjectID, ModelId: r.ModelID, GroupId: r.GroupID, Output: text,
		Question: r.Question, Answer: r.Answer, Error: r.Error,
		Usage:     gen.Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens},
		CreatedAt: utc(r.CreatedAt), StartedAt: utcPtr(r.StartedAt), FinishedAt: utcPtr(r.FinishedAt),
	}
	if r.Result != nil {
		_ = json.Unmarshal(r.Result, &out.Result)
	}
	return out
}

// chatReply generates the persona's next reply in a chat and stores it as a message.
type chatReply struct{ s *Service }

func (k chatReply) Prepare(ctx context.Context, q store.Q, run store.Run) (llm.Request, string, error) {
	c, err := q.ChatByID(ctx, *run.SubjectID)
	if err != nil {
		return llm.Request{}, "", err
	}
	p, err := q.PersonaByID(ctx, c.PersonaID)
	if errors.Is(err, store.ErrNotFound) {
		return llm.Request{}, "", problem.Conflict("the chat's persona has been deleted")
	}
	if err != nil {
		return llm.Request{}, "", err
	}
	ms, err := q.ChatMessages(ctx, c.ID)
	if err != nil {
		return llm.Request{}, "", err
	}
	if in := replyInput(run); in.MessageID != nil {
		if i := slices.IndexFunc(ms, func(m store.Message) bool { return m.ID == *in.MessageID }); i >= 0 {
			ms = ms[:i+1]
		}
	}
	req := llm.Request{MaxTokens: 300, Messages: []llm.Message{{Role: llm.System,
		Content: llm.CharacterPrompt(llm.Character{Name: p.Name, About: p.Description, Behaviour: p.Instructions})}}}
	for _, m := range ms {
		role := llm.User
		if m.Role == string(gen.ChatRoleAssistant) {
			role = llm.Assistant
		}
		req.Messages = append(req.Messages, llm.Message{Role: role, Content: m.Text})
	}
	return req, "", nil
}

func (k chatReply) Deliver(ctx context.Context, q store.Q, run store.Run, text string) (map[string]any, error) {
	m := store.Message{ChatID: *run.SubjectID, Role: string(gen.ChatRoleAssistant), Text: text, ParentID: replyInput(run).MessageID}
	if m.ParentID == nil {
		if last, err := q.LastMessage(ctx, m.ChatID); err == nil {
			m.ParentID = &last.ID
		}
	}
	if err := q.AppendMessage(ctx, &m); err != nil {
		return nil, err
	}
	return map[string]any{"message": messageOut(m)}, nil
}

// Announce tells the attempt's topic that the reply was stored as a message.
func (k chatReply) Announce(run store.Run, result map[string]any) []events.Event {
	if m, ok := result["message"].(gen.ChatMessage); ok {
		return []events.Event{messageEvent(run.Topic, run.ProfileID, m)}
	}
	return nil
}

// messageEvent is attempt.chat.message for a stored message.
func messageEvent(topic string, profileID uuid.UUID, m gen.ChatMessage) events.Event {
	data, _ := json.Marshal(map[string]any{"chat_id": m.ChatId, "message": m})
	return events.Event{Topic: topic, Name: "attempt.chat.message", Data: data, Also: []string{events.ProfileTopic(profileID)}}
}

// textAnswer answers instructions about an artifact; the text is the result.
type textAnswer struct{ s *Service }

func (k textAnswer) Prepare(ctx context.Context, q store.Q, run store.Run) (llm.Request, string, error) {
	var in runIn
	if err := json.Unmarshal(run.Input, &in); err != nil {
		return llm.Request{}, "", err
	}
	var context [][2]string
	if run.SubjectID != nil {
		id, err := auth.ProfileIdentity(ctx, q, run.ProfileID)
		if err != nil {
			return llm.Request{}, "", err
		}
		if context, err = k.s.describe(ctx, id, run.Artifact, *run.SubjectID); err != nil {
			return llm.Request{}, "", err
		}
	}
	return llm.Request{MaxTokens: 400, Messages: []llm.Message{
		{Role: llm.System, Content: llm.TaskPrompt("answer about "+run.Artifact, context...)},
		{Role: llm.User, Content: strings.Join(in.Instructions, "\n")},
	}}, "", nil
}

func (textAnswer) Deliver(_ context.Context, _ store.Q, _ store.Run, text string) (map[string]any, error) {
	return map[string]any{"text": text}, nil
}

// kinds implement jobs.Kind.
var (
	_ jobs.Kind      = chatReply{}
	_ jobs.Announcer = chatReply{}
	_ jobs.Kind      = textAnswer{}
)
