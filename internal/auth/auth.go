// Package auth resolves bearer tokens into identities and carries the identity in a
// context.Context, which is all handlers ever see of the caller.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/store"
)

// Identity is who is calling: a profile, its role and departments, and the session (token)
// it authenticated with.
type Identity struct {
	ProfileID     uuid.UUID
	ProfileName   string
	ProfileSince  time.Time
	SessionID     uuid.UUID // the token's id
	Role          string
	Level         int // 0 sees and manages every department
	Permissions   []store.Permission
	Departments   []store.Department
	DepartmentIDs []uuid.UUID
}

// SameRights reports whether two identities of a profile have the same role and
// departments.
func (id *Identity) SameRights(other *Identity) bool {
	if id.Role != other.Role || id.Level != other.Level || len(id.DepartmentIDs) != len(other.DepartmentIDs) {
		return false
	}
	for _, d := range id.DepartmentIDs {
		if !slices.Contains(other.DepartmentIDs, d) {
			return false
		}
	}
	return true
}

// Can reports whether the role allows an operation of an artifact.
func (id *Identity) Can(artifact, operation string) bool {
	for _, p := range id.Permissions {
		if (p.Artifact == "*" || p.Artifact == artifact) && (p.Operation == "*" || p.Operation == operation) {
			return true
		}
	}
	return false
}

// Scope is the part of the data the identity may see.
func (id *Identity) Scope() store.Scope {
	return store.Scope{All: id.Level == 0, DepartmentIDs: id.DepartmentIDs}
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity in ctx, or nil.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}

// TokenPrefix starts every token, so that a leaked one is easy to recognise.
const TokenPrefix = "glow_"

// NewToken returns a new random token and the hash to store for it.
func NewToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// TicketPrefix starts every stream ticket.
const TicketPrefix = "glst_"

// StreamTicketTTL is how long a stream ticket is good for.
const StreamTicketTTL = time.Minute

// IssueStreamTicket returns a new stream ticket of the caller's token and when it expires:
// it authenticates one GET /<artifact>/stream, within StreamTicketTTL, as that token does.
// Only its hash is stored.
func IssueStreamTicket(ctx context.Context, q store.Q, id *Identity) (string, time.Time, error) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	ticket := TicketPrefix + base64.RawURLEncoding.EncodeToString(b)
	expires := store.Now().Add(StreamTicketTTL)
	if err := q.CreateStreamTicket(ctx, HashToken(ticket), id.SessionID, expires); err != nil {
		return "", time.Time{}, fmt.Errorf("keep stream ticket: %w", err)
	}
	return ticket, expires, nil
}

// RedeemStreamTicket uses a stream ticket up and returns the identity of the token it was
// obtained with: ErrUnauthorized for a ticket that is unknown, used, expired, or of a token
// revoked since.
func (r *Resolver) RedeemStreamTicket(ctx context.Context, ticket string) (*Identity, error) {
	if !strings.HasPrefix(ticket, TicketPrefix) {
		return nil, ErrUnauthorized
	}
	q := r.store.Q()
	tokenID, err := q.TakeStreamTicket(ctx, HashToken(ticket))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("take stream ticket: %w", err)
	}
	t, err := q.TokenByID(ctx, tokenID)
	return tokenIdentity(ctx, q, t, err)
}

// tokenIdentity is the identity of a token that was looked up (with the lookup's error):
// ErrUnauthorized for one that is missing or revoked.
func tokenIdentity(ctx context.Context, q store.Q, t store.Token, err error) (*Identity, error) {
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.RevokedAt != nil) {
		return nil, ErrUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	id, err := ProfileIdentity(ctx, q, t.ProfileID)
	if err != nil {
		return nil, fmt.Errorf("profile of token %s: %w", t.ID, err)
	}
	id.SessionID = t.ID
	return id, nil
}

// HashToken is the stored form of a token (and of a stream ticket): both are 256 random
// bits, so a plain SHA-256 is enough to make a leaked database useless for logging in.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseBearer extracts the token from an "Authorization: Bearer <token>" value (the scheme
// is case-insensitive). It reports false when the value is not a bearer credential.
func ParseBearer(value string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(value), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// ErrUnauthorized is returned for unknown and revoked tokens.
var ErrUnauthorized = errors.New("unknown or revoked token")

// Resolver turns tokens into identities. It keeps a resolved identity for a short while, so
// that a busy client does not cost a database round trip per request; Forget drops the
// identities of a revoked session at once.
type Resolver struct {
	store *store.Store
	ttl   time.Duration

	mu        sync.Mutex
	cache     map[string]cachedIdentity // by token hash
	bySession map[uuid.UUID]string      // session → token hash, for Forget
	touched   map[uuid.UUID]time.Time   // when each token's last_used_at was last written
}

type cachedIdentity struct {
	id    *Identity
	until time.Time
}

// NewResolver returns a resolver reading from s that keeps identities for ttl (0: never).
func NewResolver(s *store.Store, ttl time.Duration) *Resolver {
	return &Resolver{store: s, ttl: ttl, cache: map[string]cachedIdentity{},
		bySession: map[uuid.UUID]string{}, touched: map[uuid.UUID]time.Time{}}
}

// touchEvery bounds how often a token's last_used_at is written.
const touchEvery = time.Minute

// Resolve returns the identity of a token, or ErrUnauthorized. The identity is shared:
// callers must not change it.
func (r *Resolver) Resolve(ctx context.Context, token string) (*Identity, error) {
	if !strings.HasPrefix(token, TokenPrefix) {
		return nil, ErrUnauthorized
	}
	hash := HashToken(token)
	now := time.Now()
	r.mu.Lock()
	c, ok := r.cache[hash]
	r.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.id, nil
	}
	q := r.store.Q()
	t, err := q.TokenByHash(ctx, hash)
	id, err := tokenIdentity(ctx, q, t, err)
	if err != nil {
		return nil, err
	}
	if r.ttl > 0 {
		r.mu.Lock()
		if len(r.cache) >= maxCached {
			r.sweep(now)
		}
		r.cache[hash] = cachedIdentity{id: id, until: now.Add(r.ttl)}
		r.bySession[id.SessionID] = hash
		r.mu.Unlock()
	}
	r.touch(ctx, t.ID)
	return id, nil
}

// maxCached bounds the cache; past it, expired entries are swept before adding one.
const maxCached = 10000

// sweep drops expired entries, or everything when none has expired. r.mu is held.
func (r *Resolver) sweep(now time.Time) {
	for hash, c := range r.cache {
		if now.After(c.until) {
			delete(r.cache, hash)
			delete(r.bySession, c.id.SessionID)
		}
	}
	if len(r.cache) >= maxCached {
		clear(r.cache)
		clear(r.bySession)
	}
}

// Forget drops the cached identity of a session, when its token is revoked.
func (r *Resolver) Forget(sessionID uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if hash, ok := r.bySession[sessionID]; ok {
		delete(r.cache, hash)
		delete(r.bySession, sessionID)
	}
	delete(r.touched, sessionID)
}

// ForgetProfile drops the cached identities of a profile, when its role or departments
// change.
func (r *Resolver) ForgetProfile(profileID uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for hash, c := range r.cache {
		if c.id.ProfileID == profileID {
			delete(r.cache, hash)
			delete(r.bySession, c.id.SessionID)
		}
	}
}

// ProfileIdentity builds the identity of a profile as it is now, without a session: what a
// run started by the profile acts as.
func ProfileIdentity(ctx context.Context, q store.Q, profileID uuid.UUID) (*Identity, error) {
	p, err := q.ProfileByID(ctx, profileID)
	if err != nil {
		return nil, err
	}
	role, err := q.Role(ctx, p.Role)
	if err != nil {
		return nil, fmt.Errorf("role of profile %s: %w", p.ID, err)
	}
	perms, err := q.RolePermissions(ctx, role.Name)
	if err != nil {
		return nil, err
	}
	deps, err := q.ProfileDepartments(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	id := &Identity{
		ProfileID: p.ID, ProfileName: p.Name, ProfileSince: p.CreatedAt,
		Role: role.Name, Level: role.Level, Permissions: sharedPermissions(role.Name, perms), Departments: deps,
	}
	for _, d := range deps {
		id.DepartmentIDs = append(id.DepartmentIDs, d.ID)
	}
	return id, nil
}

// rolePermissions holds the latest permission list read for each role, shared by every
// identity of the role while the list stays the same: thousands of sockets of one role then
// keep one copy of it, not one each. An identity never changes its list.
var rolePermissions = struct {
	sync.Mutex
	byRole map[string][]store.Permission
}{byRole: map[string][]store.Permission{}}

// sharedPermissions returns the list held for role if it equals perms; otherwise it holds
// (a right-sized copy of) perms for role from now on and returns it.
func sharedPermissions(role string, perms []store.Permission) []store.Permission {
	rolePermissions.Lock()
	defer rolePermissions.Unlock()
	if held, ok := rolePermissions.byRole[role]; ok && slices.Equal(held, perms) {
		return held
	}
	perms = slices.Clip(slices.Clone(perms))
	rolePermissions.byRole[role] = perms
	return perms
}

// touch writes the token's last_used_at at most once per touchEvery. It is best effort: a
// failed write only makes last_used_at older.
func (r *Resolver) touch(ctx context.Context, tokenID uuid.UUID) {
	now := store.Now()
	r.mu.Lock()
	if now.Sub(r.touched[tokenID]) < touchEvery {
		r.mu.Unlock()
		return
	}
	r.touched[tokenID] = now
	r.mu.Unlock()
	_ = r.store.Q().TouchToken(ctx, tokenID, now)
}

// Issued is what Issue did.
type Issued struct {
	Token          string        // the new token, shown once
	Session        store.Token   // its stored row
	Profile        store.Profile // the profile, with its role now
	CreatedProfile bool
	PreviousRole   string // the role the profile had before, when Issue changed it
}

// Issue creates a token for the named profile. A missing profile is created with role; an
// existing one is given role. The profile is added to the departments, which are created as
// needed. Run it inside a transaction.
func Issue(ctx context.Context, q store.Q, profile, role, label string, departments ...string) (Issued, error) {
	var out Issued
	p, err := q.ProfileByName(ctx, profile)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if p, err = q.CreateProfile(ctx, profile, role); err != nil {
			return out, err
		}
		out.CreatedProfile = true
	case err != nil:
		return out, err
	case p.Role != role:
		if err := q.SetProfileRole(ctx, p.ID, role); err != nil {
			return out, err
		}
		out.PreviousRole, p.Role = p.Role, role
	}
	for _, name := range departments {
		d, err := q.EnsureDepartment(ctx, strings.TrimSpace(name), p.ID)
		if err != nil {
			return out, err
		}
		if err := q.AddProfileDepartment(ctx, p.ID, d.ID); err != nil {
			return out, err
		}
	}
	token, hash := NewToken()
	if out.Session, err = q.CreateToken(ctx, p.ID, hash, label); err != nil {
		return out, err
	}
	out.Token, out.Profile = token, p
	return out, nil
}
