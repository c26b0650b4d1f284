package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Presence states.
const (
	Active   = "active"
	Inactive = "inactive"
)

// Activity is a presence change of a profile: its first socket opened (active) or its last
// one closed (inactive).
type Activity struct {
	ID        uuid.UUID `db:"id"`
	ProfileID uuid.UUID `db:"profile_id"`
	State     string    `db:"state"`
	Sockets   int       `db:"sockets"`
	CreatedAt time.Time `db:"created_at"`
}

// InsertActivity records a presence change.
func (q Q) InsertActivity(ctx context.Context, a Activity) error {
	_, err := q.exec(ctx, `INSERT INTO activity (id, profile_id, state, sockets, created_at) VALUES (?, ?, ?, ?, ?)`,
		a.ID, a.ProfileID, a.State, a.Sockets, a.CreatedAt)
	return err
}

// Presence is a profile's latest presence change.
type Presence struct {
	ProfileID   uuid.UUID `db:"profile_id"`
	ProfileName string    `db:"profile_name"`
	Role        string    `db:"role"`
	State       string    `db:"state"`
	Sockets     int       `db:"sockets"`
	Since       time.Time `db:"since"`
}

// PresenceFilter selects profiles for an activity search.
type PresenceFilter struct {
	State         string      // Active, Inactive, or "" for both
	Text          string      // case-insensitive match on the profile's name
	DepartmentIDs []uuid.UUID // profiles in any of these departments (nil: all)
}

// SearchPresence returns a page of profiles by their latest presence change, most recent
// first, and their total. Profiles that never connected are left out.
func (q Q) SearchPresence(ctx context.Context, f PresenceFilter, limit, offset int) ([]Presence, int, error) {
	conds := []string{`a.id = (SELECT b.id FROM activity b WHERE b.profile_id = a.profile_id ORDER BY b.created_at DESC, b.id DESC LIMIT 1)`}
	var args []any
	if f.State != "" {
		conds = append(conds, "a.state = ?")
		args = append(args, f.State)
	}
	if f.Text != "" {
		conds = append(conds, `lower(p.name) LIKE ? ESCAPE '\'`)
		args = append(args, likePattern(f.Text))
	}
	if f.DepartmentIDs != nil {
		if len(f.DepartmentIDs) == 0 {
			return nil, 0, nil
		}
		c, a := in(`EXISTS (SELECT 1 FROM profile_departments pd WHERE pd.profile_id = p.id AND pd.department_id IN (?))`, f.DepartmentIDs)
		conds = append(conds, c)
		args = append(args, a...)
	}
	from := ` FROM activity a JOIN profiles p ON p.id = a.profile_id WHERE ` + strings.Join(conds, " AND ")
	var total int
	if err := q.get(ctx, &total, `SELECT COUNT(*)`+from, args...); err != nil {
		return nil, 0, err
	}
	var ps []Presence
	err := q.sel(ctx, &ps, `SELECT a.profile_id, p.name AS profile_name, p.role, a.state, a.sockets, a.created_at AS since`+from+`
		ORDER BY a.created_at DESC, a.id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	return ps, total, err
}

// ProfilesInDepartments returns those of the profiles that belong to any of the departments.
func (q Q) ProfilesInDepartments(ctx context.Context, profileIDs, departmentIDs []uuid.UUID) ([]uuid.UUID, error) {
	if len(profileIDs) == 0 || len(departmentIDs) == 0 {
		return nil, nil
	}
	query, args := in(`SELECT DISTINCT profile_id FROM profile_departments WHERE profile_id IN (?) AND department_id IN (?)`,
		profileIDs, departmentIDs)
	var ids []uuid.UUID
	err := q.sel(ctx, &ids, query, args...)
	return ids, err
}

// ProfileActivity lists a profile's presence changes, newest first.
func (q Q) ProfileActivity(ctx context.Context, profileID uuid.UUID, limit int) ([]Activity, error) {
	var as []Activity
	err := q.sel(ctx, &as, `SELECT id, profile_id, state, sockets, created_at FROM activity
		WHERE profile_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`, profileID, limit)
	return as, err
}
