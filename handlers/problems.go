package handlers

import (
	"context"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/store"
)

// The problems reported with the artifacts' problem operations: system.activity lists them,
// system.activity_resolve resolves them. A caller below level 0 reaches the reports of the
// profiles of its departments, and its own.

func problemScope(id *auth.Identity) store.ProblemFilter {
	return store.ProblemFilter{Reporter: id.ProfileID, DepartmentIDs: presenceScope(id)}
}

// problems lists a page of the reports in the caller's scope for system.activity.
func (s *Service) problems(ctx context.Context, q store.Q, id *auth.Identity, in *gen.SystemActivityRequest) ([]gen.ReportedProblem, int, error) {
	f := problemScope(id)
	resolved := deref(in.ProblemsResolved)
	f.Resolved, f.Artifact = &resolved, deref(in.ProblemsArtifact)
	ps, total, err := q.SearchProblems(ctx, f, deref(in.ProblemsPageSize), deref(in.ProblemsPageOffset))
	if err != nil {
		return nil, 0, err
	}
	out := make([]gen.ReportedProblem, len(ps))
	for i, p := range ps {
		out[i] = problemOut(p)
	}
	return out, total, nil
}

// SystemActivityResolve marks a report resolved, or open again.
func (s *Service) SystemActivityResolve(ctx context.Context, in *gen.SystemActivityResolveRequest) (*gen.SystemActivityResolveResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var by *uuid.UUID
	if in.Resolved == nil || *in.Resolved {
		by = &id.ProfileID
	}
	var p store.Problem
	err = s.store.Tx(ctx, func(q store.Q) error {
		p, err = q.ResolveProblem(ctx, in.ProblemId, problemScope(id), by, store.Now())
		return err
	})
	if err != nil {
		return nil, notFound(err, "problem", in.ProblemId)
	}
	return &gen.SystemActivityResolveResponse{Problem: problemOut(p), IdempotencyKey: in.IdempotencyKey}, nil
}

func problemOut(p store.Problem) gen.ReportedProblem {
	return gen.ReportedProblem{ProblemId: p.ID, Artifact: p.Artifact, SubjectId: p.SubjectID, Type: gen.ProblemType(p.Type),
		Message: p.Message, ProfileId: p.ProfileID, ProfileName: p.ProfileName, CreatedAt: utc(p.CreatedAt),
		Resolved: p.ResolvedAt != nil, ResolvedAt: utcPtr(p.ResolvedAt), ResolvedBy: p.ResolvedBy}
}
