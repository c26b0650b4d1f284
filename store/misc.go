package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Group buckets a profile's related calls on one artifact (a working session in an editor).
type Group struct {
	ID         uuid.UUID `db:"id"`
	Artifact   string    `db:"artifact"`
	ProfileID  uuid.UUID `db:"profile_id"`
	Name       *string   `db:"name"`
	CreatedAt  time.Time `db:"created_at"`
	LastUsedAt time.Time `db:"last_used_at"`
}

const groupColumns = `id, artifact, profile_id, name, created_at, last_used_at`

// GroupByID finds a group.
func (q Q) GroupByID(ctx context.Context, id uuid.UUID) (Group, error) {
	var g Group
	err := q.get(ctx, &g, `SELECT `+groupColumns+` FROM groups WHERE id = ?`, id)
	return g, err
}

// RecentGroup finds the profile's group for artifact last used at or after since.
func (q Q) RecentGroup(ctx context.Context, profileID uuid.UUID, artifact string, since time.Time) (Group, error) {
	var g Group
	err := q.get(ctx, &g, `SELECT `+groupColumns+` FROM groups
		WHERE profile_id = ? AND artifact = ? AND last_used_at >= ?
		ORDER BY last_used_at DESC, id DESC LIMIT 1`, profileID, artifact, since)
	return g, err
}

// InsertGroup stores a group.
func (q Q) InsertGroup(ctx context.Context, g Group) error {
	_, err := q.exec(ctx, `INSERT INTO groups (id, artifact, profile_id, name, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)`,
		g.ID, g.Artifact, g.ProfileID, g.Name, g.CreatedAt, g.LastUsedAt)
	return err
}

// TouchGroup records a use of the group and, when name is not nil, renames it.
func (q Q) TouchGroup(ctx context.Context, id uuid.UUID, at time.Time, name *string) error {
	_, err := q.exec(ctx, `UPDATE groups SET last_used_at = ?, name = COALESCE(?, name) WHERE id = ?`, at, name, id)
	return err
}

// Refresh records a recomputation of an artifact's derived data.
type Refresh struct {
	ID             uuid.UUID  `db:"id"`
	Artifact       string     `db:"artifact"`
	SubjectID      *uuid.UUID `db:"subject_id"`
	ProfileID      uuid.UUID  `db:"profile_id"`
	RefreshedCount int        `db:"refreshed_count"`
	CreatedAt      time.Time  `db:"created_at"`
}

// InsertRefresh stores a refresh record.
func (q Q) InsertRefresh(ctx context.Context, r Refresh) error {
	_, err := q.exec(ctx, `INSERT INTO refreshes (id, artifact, subject_id, profile_id, refreshed_count, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.Artifact, r.SubjectID, r.ProfileID, r.RefreshedCount, r.CreatedAt)
	return err
}

// File is a stored file, such as an export.
type File struct {
	ID          uuid.UUID `db:"id"`
	ProfileID   uuid.UUID `db:"profile_id"`
	Name        string    `db:"name"`
	ContentType string    `db:"content_type"`
	Size        int       `db:"size"`
	Content     []byte    `db:"content"`
	CreatedAt   time.Time `db:"created_at"`
}

// InsertFile stores a file.
func (q Q) InsertFile(ctx context.Context, f File) error {
	_, err := q.exec(ctx, `INSERT INTO files (id, profile_id, name, content_type, size, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.ProfileID, f.Name, f.ContentType, f.Size, f.Content, f.CreatedAt)
	return err
}

// FileByID finds a file, content included.
func (q Q) FileByID(ctx context.Context, id uuid.UUID) (File, error) {
	var f File
	err := q.get(ctx, &f, `SELECT id, profile_id, name, content_type, size, content, created_at FROM files WHERE id = ?`, id)
	return f, err
}

// IdempotencyKey is the receipt of a call made with an idempotency key. Status is nil while
// the first call is running.
type IdempotencyKey struct {
	ProfileID   uuid.UUID `db:"profile_id"`
	Key         string    `db:"key"`
	Operation   string    `db:"operation"`
	RequestHash string    `db:"request_hash"`
	Status      *int      `db:"status"`
	Response    []byte    `db:"response"`
	CreatedAt   time.Time `db:"created_at"`
	Owner       string    `db:"owner"` // the process running the call (node.Self)
}

// ClaimIdempotencyKey reserves k for a call about to run, for the process k.Owner. When
// the key is already taken it returns the existing receipt and false. A reservation left
// unfinished by a process that gone says has ended, or since before stale (a call of a
// process that may have crashed), is taken over.
func (q Q) ClaimIdempotencyKey(ctx context.Context, k IdempotencyKey, stale time.Time, gone func(owner string) bool) (IdempotencyKey, bool, error) {
	n, err := q.exec(ctx, `INSERT INTO idempotency_keys (profile_id, key, operation, request_hash, created_at, owner) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (profile_id, key) DO NOTHING`, k.ProfileID, k.Key, k.Operation, k.RequestHash, k.CreatedAt, k.Owner)
	if err != nil || n == 1 {
		return k, n == 1, err
	}
	n, err = q.exec(ctx, `UPDATE idempotency_keys SET operation = ?, request_hash = ?, created_at = ?, owner = ?
		WHERE profile_id = ? AND key = ? AND status IS NULL AND created_at < ?`,
		k.Operation, k.RequestHash, k.CreatedAt, k.Owner, k.ProfileID, k.Key, stale)
	if err != nil || n == 1 {
		return k, n == 1, err
	}
	var existing IdempotencyKey
	err = q.get(ctx, &existing, `SELECT profile_id, key, operation, request_hash, status, response, created_at, owner
		FROM idempotency_keys WHERE profile_id = ? AND key = ?`, k.ProfileID, k.Key)
	if errors.Is(err, ErrNotFound) {
		// Released between the insert and the read: the caller may simply retry.
		return k, false, errors.New("idempotency key released concurrently")
	}
	if err == nil && existing.Status == nil && gone(existing.Owner) {
		n, err = q.exec(ctx, `UPDATE idempotency_keys SET operation = ?, request_hash = ?, created_at = ?, owner = ?
			WHERE profile_id = ? AND key = ? AND status IS NULL AND owner = ?`,
			k.Operation, k.RequestHash, k.CreatedAt, k.Owner, k.ProfileID, k.Key, existing.Owner)
		if err != nil || n == 1 {
			return k, n == 1, err
		}
	}
	return existing, false, err
}

// CompleteIdempotencyKey stores the response of the call that holds the key.
func (q Q) CompleteIdempotencyKey(ctx context.Context, profileID uuid.UUID, key string, status int, response []byte) error {
	_, err := q.exec(ctx, `UPDATE idempotency_keys SET status = ?, response = ? WHERE profile_id = ? AND key = ?`,
		status, response, profileID, key)
	return err
}

// ReleaseIdempotencyKey forgets a reservation, so that a retry runs the call again.
func (q Q) ReleaseIdempotencyKey(ctx context.Context, profileID uuid.UUID, key string) error {
	_, err := q.exec(ctx, `DELETE FROM idempotency_keys WHERE profile_id = ? AND key = ? AND status IS NULL`, profileID, key)
	return err
}

// PurgeIdempotencyKeys deletes the receipts created before t.
func (q Q) PurgeIdempotencyKeys(ctx context.Context, t time.Time) (int64, error) {
	return q.exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < ?`, t)
}
