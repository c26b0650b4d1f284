package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Run states. A run moves queued → running → completed | failed | stopped, and may rest in
// paused (the caller asked) or interrupted (the run asked a question) on the way.
const (
	RunQueued      = "queued"
	RunRunning     = "running"
	RunPaused      = "paused"
	RunInterrupted = "interrupted"
	RunCompleted   = "completed"
	RunFailed      = "failed"
	RunStopped     = "stopped"
)

// RunFinished reports whether a status is terminal.
func RunFinished(status string) bool {
	return status == RunCompleted || status == RunFailed || status == RunStopped
}

// Run is a generation job.
type Run struct {
	ID               uuid.UUID  `db:"id"`
	GroupID          *uuid.UUID `db:"group_id"`
	Artifact         string     `db:"artifact"`
	Kind             string     `db:"kind"`
	Topic            string     `db:"topic"` // where its events go
	ProfileID        uuid.UUID  `db:"profile_id"`
	SubjectID        *uuid.UUID `db:"subject_id"` // the chat, persona… it works on
	ModelID          *uuid.UUID `db:"model_id"`
	Status           string     `db:"status"`
	Progress         int        `db:"progress"`
	Input            []byte     `db:"input"`  // JSON
	Output           string     `db:"output"` // the text generated so far
	OutputSeq        int64      `db:"output_seq"`
	Result           []byte     `db:"result"` // JSON, once completed
	Error            *string    `db:"error"`
	Question         *string    `db:"question"`
	Answer           *string    `db:"answer"`
	PromptTokens     int        `db:"prompt_tokens"`
	CompletionTokens int        `db:"completion_tokens"`
	CreatedAt        time.Time  `db:"created_at"`
	StartedAt        *time.Time `db:"started_at"`
	UpdatedAt        time.Time  `db:"updated_at"`
	FinishedAt       *time.Time `db:"finished_at"`
}

const runColumns = `id, group_id, artifact, kind, topic, profile_id, subject_id, model_id, status, progress, input, output,
	output_seq, result, error, question, answer, prompt_tokens, completion_tokens, created_at, started_at, updated_at, finished_at`

// InsertRun stores a new run.
func (q Q) InsertRun(ctx context.Context, r Run) error {
	_, err := q.exec(ctx, `INSERT INTO runs (id, group_id, artifact, kind, topic, profile_id, subject_id, model_id, status, progress,
		input, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.GroupID, r.Artifact, r.Kind, r.Topic, r.ProfileID, r.SubjectID, r.ModelID, r.Status, r.Progress,
		string(r.Input), r.CreatedAt, r.UpdatedAt)
	return err
}

// RunByID finds a run.
func (q Q) RunByID(ctx context.Context, id uuid.UUID) (Run, error) {
	var r Run
	err := q.get(ctx, &r, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id)
	return r, err
}

// RunsByIDs finds runs; missing ids are left out.
func (q Q) RunsByIDs(ctx context.Context, ids []uuid.UUID) ([]Run, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	query, args := in(`SELECT `+runColumns+` FROM runs WHERE id IN (?)`, ids)
	var rs []Run
	err := q.sel(ctx, &rs, query, args...)
	return rs, err
}

// RunsWithStatus lists the runs in any of the statuses, oldest first.
func (q Q) RunsWithStatus(ctx context.Context, statuses ...string) ([]Run, error) {
	query, args := in(`SELECT `+runColumns+` FROM runs WHERE status IN (?) ORDER BY created_at, id`, statuses)
	var rs []Run
	err := q.sel(ctx, &rs, query, args...)
	return rs, err
}

// CountRunsByStatus counts the runs in each unfinished status.
func (q Q) CountRunsByStatus(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	err := q.sel(ctx, &rows, `SELECT status, COUNT(*) AS n FROM runs
		WHERE status IN ('queued', 'running', 'paused', 'interrupted') GROUP BY status`)
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, err
}

// ActiveRunOn returns the unfinished run of a kind working on a subject, if any: the oldest,
// since a subject's runs execute one at a time, in order.
func (q Q) ActiveRunOn(ctx context.Context, subjectID uuid.UUID, kind string) (Run, error) {
	var r Run
	err := q.get(ctx, &r, `SELECT `+runColumns+` FROM runs WHERE subject_id = ? AND kind = ?
		AND status NOT IN ('completed', 'failed', 'stopped') ORDER BY created_at, id LIMIT 1`, subjectID, kind)
	return r, err
}

// CountActiveRuns counts a profile's runs that hold a worker or wait for one: queued,
// running or paused.
func (q Q) CountActiveRuns(ctx context.Context, profileID uuid.UUID) (int, error) {
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM runs WHERE profile_id = ? AND status IN ('queued', 'running', 'paused')`, profileID)
	return n, err
}

// CountActiveRunsOn counts the runs of a kind on a subject that have not ended.
func (q Q) CountActiveRunsOn(ctx context.Context, subjectID uuid.UUID, kind string) (int, error) {
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM runs WHERE subject_id = ? AND kind = ?
		AND status NOT IN ('completed', 'failed', 'stopped')`, subjectID, kind)
	return n, err
}

// RunFilter selects a profile's runs of an artifact.
type RunFilter struct {
	ProfileID uuid.UUID
	Artifact  string
	Text      string // case-insensitive match on the input
	From, To  *time.Time
}

// ListRuns returns a page of runs, newest first, and their total.
func (q Q) ListRuns(ctx context.Context, f RunFilter, limit, offset int) ([]Run, int, error) {
	conds := []string{"profile_id = ?", "artifact = ?"}
	args := []any{f.ProfileID, f.Artifact}
	if f.Text != "" {
		conds = append(conds, `lower(input) LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(f.Text))
	}
	conds, args = createdBetween(conds, args, f.From, f.To)
	where := strings.Join(conds, " AND ")
	var rs []Run
	total, err := q.page(ctx, &rs, runColumns, "runs", where, "created_at DESC, id DESC", args, limit, offset)
	return rs, total, err
}

// UpdateRun writes a run's mutable fields.
func (q Q) UpdateRun(ctx context.Context, r Run) error {
	_, err := q.exec(ctx, runUpdate, runUpdateArgs(r)...)
	return err
}

// UpdateRunFrom is UpdateRun if the stored run's status is still from; it says whether it
// wrote.
func (q Q) UpdateRunFrom(ctx context.Context, r Run, from string) (bool, error) {
	n, err := q.exec(ctx, runUpdate+` AND status = ?`, append(runUpdateArgs(r), from)...)
	return n == 1, err
}

// CheckpointRun writes a running run's progress and the text it has generated so far.
func (q Q) CheckpointRun(ctx context.Context, r Run) error {
	_, err := q.exec(ctx, `UPDATE runs SET progress = ?, output = ?, output_seq = ?, updated_at = ? WHERE id = ?`,
		r.Progress, r.Output, r.OutputSeq, Now(), r.ID)
	return err
}

const runUpdate = `UPDATE runs SET status = ?, progress = ?, output = ?, output_seq = ?, result = ?, error = ?,
	question = ?, answer = ?, prompt_tokens = ?, completion_tokens = ?, started_at = ?, updated_at = ?, finished_at = ?,
	model_id = ? WHERE id = ?`

func runUpdateArgs(r Run) []any {
	return []any{r.Status, r.Progress, r.Output, r.OutputSeq, nullJSON(r.Result), r.Error, r.Question, r.Answer,
		r.PromptTokens, r.CompletionTokens, r.StartedAt, r.UpdatedAt, r.FinishedAt, r.ModelID, r.ID}
}

func nullJSON(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}
