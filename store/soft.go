package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Soft call states.
const (
	SoftPending  = "pending"
	SoftAccepted = "accepted"
	SoftRejected = "rejected"
)

// SoftCall is a create, update or delete staged under its idempotency key until a later
// call accepts or rejects it.
type SoftCall struct {
	ProfileID uuid.UUID
	Key       string
	Operation string      // "agent.create", …
	Request   []byte      // the staged request, as sent (sealed in the database)
	RecordIDs []uuid.UUID // the records a staged create stored pending
	Status    string
	CreatedAt time.Time
}

type softCallRow struct {
	ProfileID uuid.UUID `db:"profile_id"`
	Key       string    `db:"idempotency_key"`
	Operation string    `db:"operation"`
	Request   string    `db:"request"`
	RecordIDs string    `db:"record_ids"`
	Status    string    `db:"status"`
	CreatedAt time.Time `db:"created_at"`
}

func softPlace(profile uuid.UUID, key string) string {
	return "soft_calls/" + profile.String() + "/" + key
}

// InsertSoftCall stages a call.
func (q Q) InsertSoftCall(ctx context.Context, c SoftCall) error {
	records, err := json.Marshal(nonNilIDs(c.RecordIDs))
	if err != nil {
		return err
	}
	_, err = q.exec(ctx, `INSERT INTO soft_calls (profile_id, idempotency_key, operation, request, record_ids, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ProfileID, c.Key, c.Operation, q.box.seal(string(c.Request), softPlace(c.ProfileID, c.Key)),
		string(records), SoftPending, c.CreatedAt)
	return err
}

func nonNilIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// SoftCallByKey finds a profile's staged call.
func (q Q) SoftCallByKey(ctx context.Context, profile uuid.UUID, key string) (SoftCall, error) {
	var row softCallRow
	if err := q.get(ctx, &row, `SELECT profile_id, idempotency_key, operation, request, record_ids, status, created_at
		FROM soft_calls WHERE profile_id = ? AND idempotency_key = ?`, profile, key); err != nil {
		return SoftCall{}, err
	}
	c := SoftCall{ProfileID: row.ProfileID, Key: row.Key, Operation: row.Operation, Status: row.Status, CreatedAt: row.CreatedAt}
	request, err := q.box.open(row.Request, softPlace(profile, key))
	if err != nil {
		return c, err
	}
	c.Request = []byte(request)
	if err := json.Unmarshal([]byte(row.RecordIDs), &c.RecordIDs); err != nil {
		return c, fmt.Errorf("soft call %s: stored records: %w", key, err)
	}
	return c, nil
}

// DecideSoftCall moves a pending call to accepted or rejected; ErrNotFound when it is no
// longer pending (another call decided it first).
func (q Q) DecideSoftCall(ctx context.Context, profile uuid.UUID, key, status string) error {
	n, err := q.exec(ctx, `UPDATE soft_calls SET status = ?, decided_at = ? WHERE profile_id = ? AND idempotency_key = ? AND status = ?`,
		status, Now(), profile, key, SoftPending)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// PromoteRecords makes the records a soft create staged visible to all.
func (q Q) PromoteRecords(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	query, args := in(`UPDATE artifacts SET pending_by = NULL, updated_at = ? WHERE pending_by IS NOT NULL AND id IN (?)`, Now(), ids)
	_, err := q.exec(ctx, query, args...)
	return err
}

// PurgeRecords removes the records a rejected soft create staged, with their links.
func (q Q) PurgeRecords(ctx context.Context, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	query, args := in(`DELETE FROM artifacts WHERE pending_by IS NOT NULL AND id IN (?)`, ids)
	_, err := q.exec(ctx, query, args...)
	return err
}
