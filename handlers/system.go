package handlers

import (
	"context"
	"time"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// ProfileContext describes the caller, from the identity resolved with their token.
func (s *Service) ProfileContext(ctx context.Context, _ *gen.ProfileContextRequest) (*gen.ProfileContextResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	out := &gen.ProfileContextResponse{
		Profile:     gen.Profile{Id: id.ProfileID, Name: id.ProfileName, CreatedAt: utc(id.ProfileSince)},
		Role:        gen.Role{Name: id.Role, Level: id.Level},
		Permissions: make([]gen.Permission, len(id.Permissions)),
		Departments: departmentsOut(id.Departments),
		SessionId:   id.SessionID,
	}
	for i, p := range id.Permissions {
		out.Permissions[i] = gen.Permission{Artifact: p.Artifact, Operation: p.Operation}
	}
	return out, nil
}

// SystemHealth reports whether the server and its database answer, and whether the event
// log stores what is published.
func (s *Service) SystemHealth(ctx context.Context, _ *gen.SystemHealthRequest) (*gen.SystemHealthResponse, error) {
	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	status, eventLog := gen.SystemHealthResponseStatusOk, gen.SystemHealthResponseEventLogOk
	if err := s.store.Ping(pingCtx); err != nil {
		status = gen.SystemHealthResponseStatusDegraded
	}
	if _, stuck := s.events.Stuck(); stuck {
		status, eventLog = gen.SystemHealthResponseStatusDegraded, gen.SystemHealthResponseEventLogStuck
	}
	return &gen.SystemHealthResponse{
		Status:        status,
		EventLog:      eventLog,
		Version:       s.door.Version(),
		Database:      gen.SystemHealthResponseDatabase(s.store.Dialect()),
		UptimeSeconds: int(time.Since(s.started).Seconds()),
		Time:          time.Now().UTC(),
	}, nil
}

// SystemStreamTicket issues a stream ticket of the caller's token, for a browser's
// EventSource.
func (s *Service) SystemStreamTicket(ctx context.Context, _ *gen.SystemStreamTicketRequest) (*gen.SystemStreamTicketResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ticket, expires, err := auth.IssueStreamTicket(ctx, s.store.Q(), id)
	if err != nil {
		return nil, err
	}
	return &gen.SystemStreamTicketResponse{Ticket: ticket, ExpiresAt: utc(expires)}, nil
}

// SystemSession describes the caller's session, or any session for level 0.
func (s *Service) SystemSession(ctx context.Context, in *gen.SystemSessionRequest) (*gen.SystemSessionResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	sessionID := id.SessionID
	if in.SessionId != nil && *in.SessionId != id.SessionID {
		if id.Level != 0 {
			return nil, problem.Forbidden("only level 0 may read another profile's session")
		}
		sessionID = *in.SessionId
	}
	q := s.store.Q()
	t, err := q.TokenByID(ctx, sessionID)
	if err != nil {
		return nil, notFound(err, "session", sessionID)
	}
	p, err := q.ProfileByID(ctx, t.ProfileID)
	if err != nil {
		return nil, err
	}
	return &gen.SystemSessionResponse{SessionId: t.ID, ProfileId: p.ID, ProfileName: p.Name, Label: t.Label,
		CreatedAt: utc(t.CreatedAt), LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt)}, nil
}

// SystemFileDownload returns a file the caller stored (any file, for level 0).
func (s *Service) SystemFileDownload(ctx context.Context, in *gen.SystemFileDownloadRequest) (*gen.SystemFileDownloadResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	f, err := s.store.Q().FileByID(ctx, in.FileId)
	if err != nil {
		return nil, notFound(err, "file", in.FileId)
	}
	if f.ProfileID != id.ProfileID && id.Level != 0 {
		return nil, problem.Forbidden("file %s belongs to another profile", in.FileId)
	}
	return &gen.SystemFileDownloadResponse{FileId: f.ID, FileName: f.Name, ContentType: f.ContentType, Size: f.Size,
		Content: f.Content, CreatedAt: utc(f.CreatedAt)}, nil
}

func departmentsOut(ds []store.Department) []gen.DepartmentRef {
	out := make([]gen.DepartmentRef, len(ds))
	for i, d := range ds {
		out[i] = gen.DepartmentRef{Id: d.ID, Name: d.Name}
	}
	return out
}
