package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Role is a named set of permissions with a level: 0 sees every department.
type Role struct {
	Name        string `db:"name"`
	Level       int    `db:"level"`
	Description string `db:"description"`
}

// Permission allows one operation ("*" for all) of one artifact ("*" for all).
type Permission struct {
	Artifact  string `db:"artifact"`
	Operation string `db:"operation"`
}

// Department is a tenancy unit: profiles and personas belong to departments.
type Department struct {
	ID        uuid.UUID `db:"id"`
	Name      string    `db:"name"`
	CreatedAt time.Time `db:"created_at"`
}

// Profile is a person (or a service) that calls glow.
type Profile struct {
	ID        uuid.UUID `db:"id"`
	Name      string    `db:"name"`
	Role      string    `db:"role"`
	CreatedAt time.Time `db:"created_at"`
}

// Token is a bearer token; only its SHA-256 hash is stored. A token is also the session it
// opens.
type Token struct {
	ID         uuid.UUID  `db:"id"`
	ProfileID  uuid.UUID  `db:"profile_id"`
	Hash       string     `db:"hash"`
	Label      string     `db:"label"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	RevokedAt  *time.Time `db:"revoked_at"`
}

// Role looks a role up by name.
func (q Q) Role(ctx context.Context, name string) (Role, error) {
	var r Role
	err := q.get(ctx, &r, `SELECT name, level, description FROM roles WHERE name = ?`, name)
	return r, err
}

// Roles lists every role, lowest level first.
func (q Q) Roles(ctx context.Context) ([]Role, error) {
	var rs []Role
	err := q.sel(ctx, &rs, `SELECT name, level, description FROM roles ORDER BY level, name`)
	return rs, err
}

// RolePermissions lists a role's permissions.
func (q Q) RolePermissions(ctx context.Context, role string) ([]Permission, error) {
	var ps []Permission
	err := q.sel(ctx, &ps, `SELECT artifact, operation FROM role_permissions WHERE role = ? ORDER BY artifact, operation`, role)
	return ps, err
}

// CountProfiles counts every profile.
func (q Q) CountProfiles(ctx context.Context) (int, error) {
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM profiles`)
	return n, err
}

// ProfileByID finds a profile.
func (q Q) ProfileByID(ctx context.Context, id uuid.UUID) (Profile, error) {
	var p Profile
	err := q.get(ctx, &p, `SELECT id, name, role, created_at FROM profiles WHERE id = ?`, id)
	return p, err
}

// ProfileByName finds a profile by its unique name.
func (q Q) ProfileByName(ctx context.Context, name string) (Profile, error) {
	var p Profile
	err := q.get(ctx, &p, `SELECT id, name, role, created_at FROM profiles WHERE name = ?`, name)
	return p, err
}

// CreateProfile creates a profile with a role that must exist.
func (q Q) CreateProfile(ctx context.Context, name, role string) (Profile, error) {
	if _, err := q.Role(ctx, role); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Profile{}, fmt.Errorf("role %q: %w", role, ErrNotFound)
		}
		return Profile{}, err
	}
	p := Profile{ID: NewID(), Name: name, Role: role, CreatedAt: Now()}
	if _, err := q.exec(ctx, `INSERT INTO profiles (id, name, role, created_at) VALUES (?, ?, ?, ?)`, p.ID, p.Name, p.Role, p.CreatedAt); err != nil {
		return p, err
	}
	return p, q.AdoptProviders(ctx, p.ID)
}

// SetProfileRole changes a profile's role.
func (q Q) SetProfileRole(ctx context.Context, id uuid.UUID, role string) error {
	if _, err := q.Role(ctx, role); err != nil {
		return fmt.Errorf("role %q: %w", role, err)
	}
	_, err := q.exec(ctx, `UPDATE profiles SET role = ?, updated_at = ? WHERE id = ? AND role <> ?`, role, Now(), id, role)
	return err
}

// ProfileChange is when a profile's role or departments last changed.
type ProfileChange struct {
	ID        uuid.UUID `db:"id"`
	UpdatedAt time.Time `db:"updated_at"`
}

// ProfilesChangedSince lists the profiles whose role or departments changed at or after t.
func (q Q) ProfilesChangedSince(ctx context.Context, t time.Time) ([]ProfileChange, error) {
	var cs []ProfileChange
	err := q.sel(ctx, &cs, `SELECT id, updated_at FROM profiles WHERE updated_at >= ? ORDER BY updated_at`, t)
	return cs, err
}

// DepartmentsByIDs returns the departments among ids that exist, by name.
func (q Q) DepartmentsByIDs(ctx context.Context, ids []uuid.UUID) ([]Department, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	query, args := in(`SELECT id, name, created_at FROM departments WHERE id IN (?) ORDER BY name`, ids)
	var ds []Department
	err := q.sel(ctx, &ds, query, args...)
	return ds, err
}

// AddProfileDepartment puts a profile in a department (a no-op if it is already there).
func (q Q) AddProfileDepartment(ctx context.Context, profileID, departmentID uuid.UUID) error {
	n, err := q.exec(ctx, `INSERT INTO profile_departments (profile_id, department_id) VALUES (?, ?)
		ON CONFLICT (profile_id, department_id) DO NOTHING`, profileID, departmentID)
	if err != nil || n == 0 {
		return err
	}
	_, err = q.exec(ctx, `UPDATE profiles SET updated_at = ? WHERE id = ?`, Now(), profileID)
	return err
}

// ProfileDepartments lists a profile's departments by name.
func (q Q) ProfileDepartments(ctx context.Context, profileID uuid.UUID) ([]Department, error) {
	var ds []Department
	err := q.sel(ctx, &ds, `SELECT d.id, d.name, d.created_at FROM departments d
		JOIN profile_departments pd ON pd.department_id = d.id
		WHERE pd.profile_id = ? ORDER BY d.name`, profileID)
	return ds, err
}

// CreateToken stores a new token's hash for a profile.
func (q Q) CreateToken(ctx context.Context, profileID uuid.UUID, hash, label string) (Token, error) {
	t := Token{ID: NewID(), ProfileID: profileID, Hash: hash, Label: label, CreatedAt: Now()}
	_, err := q.exec(ctx, `INSERT INTO tokens (id, profile_id, hash, label, created_at) VALUES (?, ?, ?, ?, ?)`,
		t.ID, t.ProfileID, t.Hash, t.Label, t.CreatedAt)
	return t, err
}

const tokenColumns = `id, profile_id, hash, label, created_at, last_used_at, revoked_at`

// TokenByHash finds a token by the hash of its secret, revoked or not.
func (q Q) TokenByHash(ctx context.Context, hash string) (Token, error) {
	var t Token
	err := q.get(ctx, &t, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash)
	return t, err
}

// TokenByID finds a token by id, revoked or not.
func (q Q) TokenByID(ctx context.Context, id uuid.UUID) (Token, error) {
	var t Token
	err := q.get(ctx, &t, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id)
	return t, err
}

// ProfileTokens lists a profile's tokens, newest first.
func (q Q) ProfileTokens(ctx context.Context, profileID uuid.UUID) ([]Token, error) {
	var ts []Token
	err := q.sel(ctx, &ts, `SELECT `+tokenColumns+` FROM tokens WHERE profile_id = ? ORDER BY created_at DESC, id DESC`, profileID)
	return ts, err
}

// RevokeToken marks a token revoked. It reports false when the token was already revoked.
func (q Q) RevokeToken(ctx context.Context, id uuid.UUID) (bool, error) {
	n, err := q.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, Now(), id)
	return n > 0, err
}

// TokensRevokedSince lists the ids of tokens revoked at or after t.
func (q Q) TokensRevokedSince(ctx context.Context, t time.Time) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := q.sel(ctx, &ids, `SELECT id FROM tokens WHERE revoked_at >= ? ORDER BY revoked_at`, t)
	return ids, err
}

// TouchToken records that a token was used at t.
func (q Q) TouchToken(ctx context.Context, id uuid.UUID, t time.Time) error {
	_, err := q.exec(ctx, `UPDATE tokens SET last_used_at = ? WHERE id = ?`, t, id)
	return err
}

// CreateStreamTicket keeps the hash of a stream ticket, obtained with a token, until it
// expires; the tickets that expired are forgotten.
func (q Q) CreateStreamTicket(ctx context.Context, hash string, tokenID uuid.UUID, expires time.Time) error {
	if _, err := q.exec(ctx, `DELETE FROM stream_tickets WHERE expires_at <= ?`, Now()); err != nil {
		return err
	}
	_, err := q.exec(ctx, `INSERT INTO stream_tickets (hash, token_id, expires_at) VALUES (?, ?, ?)`, hash, tokenID, expires.UTC())
	return err
}

// TakeStreamTicket uses a stream ticket up: it returns the token the ticket was obtained
// with, once, before the ticket expires; ErrNotFound otherwise.
func (q Q) TakeStreamTicket(ctx context.Context, hash string) (uuid.UUID, error) {
	var tokenID uuid.UUID
	err := q.get(ctx, &tokenID, `DELETE FROM stream_tickets WHERE hash = ? AND expires_at > ? RETURNING token_id`, hash, Now())
	return tokenID, err
}
