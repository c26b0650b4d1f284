package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func TestIdentityRoundTrip(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()

			roles, err := q.Roles(ctx)
			if err != nil || len(roles) != 3 || roles[0].Name != "admin" || roles[0].Level != 0 {
				t.Fatalf("seeded roles = %+v, %v", roles, err)
			}
			p, err := q.CreateProfile(ctx, "ada", "editor")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := q.CreateProfile(ctx, "ada", "editor"); !errors.Is(err, store.ErrDuplicate) {
				t.Fatalf("second profile with the same name: %v, want ErrDuplicate", err)
			}
			if _, err := q.CreateProfile(ctx, "bob", "wizard"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("profile with an unknown role: %v, want ErrNotFound", err)
			}
			got, err := q.ProfileByName(ctx, "ada")
			if err != nil || got.ID != p.ID || got.Name != p.Name || got.Role != p.Role || !got.CreatedAt.Equal(p.CreatedAt) {
				t.Fatalf("ProfileByName = %+v, %v; want %+v", got, err, p)
			}

			sales, err := q.EnsureDepartment(ctx, "sales", p.ID)
			if err != nil {
				t.Fatal(err)
			}
			again, err := q.EnsureDepartment(ctx, "sales", p.ID)
			if err != nil || again.ID != sales.ID {
				t.Fatalf("EnsureDepartment twice = %+v, %v; want %+v", again, err, sales)
			}
			for range 2 {
				if err := q.AddProfileDepartment(ctx, p.ID, sales.ID); err != nil {
					t.Fatal(err)
				}
			}
			deps, err := q.ProfileDepartments(ctx, p.ID)
			if err != nil || len(deps) != 1 || deps[0].ID != sales.ID || deps[0].Name != "sales" {
				t.Fatalf("ProfileDepartments = %+v, %v", deps, err)
			}

			tok, err := q.CreateToken(ctx, p.ID, "hash-1", "laptop")
			if err != nil {
				t.Fatal(err)
			}
			byHash, err := q.TokenByHash(ctx, "hash-1")
			if err != nil || byHash.ID != tok.ID || !byHash.CreatedAt.Equal(tok.CreatedAt) || byHash.RevokedAt != nil {
				t.Fatalf("TokenByHash = %+v, %v; want %+v", byHash, err, tok)
			}
			before := store.Now()
			if ok, err := q.RevokeToken(ctx, tok.ID); !ok || err != nil {
				t.Fatalf("RevokeToken = %v, %v", ok, err)
			}
			if ok, _ := q.RevokeToken(ctx, tok.ID); ok {
				t.Fatal("revoking twice reported a change")
			}
			revoked, err := q.TokensRevokedSince(ctx, before)
			if err != nil || len(revoked) != 1 || revoked[0] != tok.ID {
				t.Fatalf("TokensRevokedSince = %v, %v", revoked, err)
			}
			if later, _ := q.TokensRevokedSince(ctx, store.Now().Add(time.Second)); len(later) != 0 {
				t.Fatalf("TokensRevokedSince(future) = %v", later)
			}
		})
	}
}

// TestPersonaTableAndCounts: the personas table the family keeps in step (its row and its
// departments, written again; a deleted persona), and the attempt count on the persona's
// record, raised by each attempt at once and recounted from the attempts.
func TestPersonaTableAndCounts(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()
			owner, _ := q.CreateProfile(ctx, "owner", "admin")
			sales, _ := q.EnsureDepartment(ctx, "sales", owner.ID)
			support, _ := q.EnsureDepartment(ctx, "support", owner.ID)
			now := store.Now()
			p := store.Persona{ID: store.NewID(), Name: "Sue", Instructions: "be tough", CreatedBy: owner.ID, CreatedAt: now, UpdatedAt: now,
				DepartmentIDs: []uuid.UUID{sales.ID, support.ID}}
			r := store.Record{ID: p.ID, Kind: store.PersonaKind, Name: p.Name, CreatedBy: owner.ID, CreatedAt: now, UpdatedAt: now,
				Fields: map[string]json.RawMessage{"instructions": json.RawMessage(`"be tough"`), "attempt_count": json.RawMessage(`0`)}}
			if err := q.InsertRecord(ctx, r); err != nil {
				t.Fatal(err)
			}
			for _, save := range []store.Persona{p, {ID: p.ID, Name: "Sue II", Instructions: "be calm", CreatedBy: owner.ID,
				CreatedAt: now, UpdatedAt: now, DepartmentIDs: []uuid.UUID{support.ID}}} {
				if err := q.SavePersona(ctx, save); err != nil {
					t.Fatal(err)
				}
			}
			got, err := q.PersonaByID(ctx, p.ID)
			if err != nil || got.Name != "Sue II" || got.Instructions != "be calm" || len(got.DepartmentIDs) != 1 || got.DepartmentIDs[0] != support.ID {
				t.Fatalf("the persona saved twice: %+v %v", got, err)
			}

			var wg sync.WaitGroup
			for range 5 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := q.IncrementPersonaAttempts(ctx, p.ID); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if r, err := q.RecordByID(ctx, store.PersonaKind, p.ID); err != nil || string(r.Fields["attempt_count"]) != "5" {
				t.Fatalf("after five attempts at once: %s %v", r.Fields["attempt_count"], err)
			}
			a := store.Attempt{ID: store.NewID(), ProfileID: owner.ID, PersonaID: p.ID, CreatedAt: now}
			if err := q.InsertAttempt(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := q.RecountPersonaAttempts(ctx, store.RecordFilter{Kind: store.PersonaKind, ID: &p.ID}); err != nil {
				t.Fatal(err)
			}
			if r, err := q.RecordByID(ctx, store.PersonaKind, p.ID); err != nil || string(r.Fields["attempt_count"]) != "1" ||
				string(r.Fields["instructions"]) != `"be tough"` {
				t.Fatalf("recounted: %v %v", r.Fields, err)
			}

			if err := q.DeletePersona(ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := q.PersonaByID(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted persona: %v", err)
			}
			if err := q.DeletePersona(ctx, p.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleting twice: %v", err)
			}
		})
	}
}

func TestAppendMessageNumbersConcurrentWrites(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			s := d.Open(t)
			q := s.Q()
			p, _ := q.CreateProfile(ctx, "learner", "learner")
			now := store.Now()
			persona := store.Persona{ID: store.NewID(), Name: "P", CreatedBy: p.ID, CreatedAt: now, UpdatedAt: now}
			if err := q.SavePersona(ctx, persona); err != nil {
				t.Fatal(err)
			}
			a := store.Attempt{ID: store.NewID(), ProfileID: p.ID, PersonaID: persona.ID, CreatedAt: now}
			c := store.Chat{ID: store.NewID(), AttemptID: a.ID, PersonaID: persona.ID, ProfileID: p.ID, CreatedAt: now}
			if err := q.InsertAttempt(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := q.InsertChat(ctx, c); err != nil {
				t.Fatal(err)
			}
			const n = 20
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- s.Tx(ctx, func(q store.Q) error {
						return q.AppendMessage(ctx, &store.Message{ChatID: c.ID, Role: "user", Text: "hi"})
					})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			ms, err := q.ChatMessages(ctx, c.ID)
			if err != nil || len(ms) != n {
				t.Fatalf("ChatMessages = %d, %v", len(ms), err)
			}
			for i, m := range ms {
				if m.Seq != i+1 {
					t.Fatalf("message %d has seq %d", i, m.Seq)
				}
			}
		})
	}
}

func TestIdempotencyKeyClaims(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()
			p, _ := q.CreateProfile(ctx, "caller", "admin")
			k := store.IdempotencyKey{ProfileID: p.ID, Key: "k1", Operation: "persona.create", RequestHash: "h1", CreatedAt: store.Now()}
			stale := store.Now().Add(-time.Minute)

			if _, claimed, err := q.ClaimIdempotencyKey(ctx, k, stale, alive); !claimed || err != nil {
				t.Fatalf("first claim = %v, %v", claimed, err)
			}
			existing, claimed, err := q.ClaimIdempotencyKey(ctx, k, stale, alive)
			if claimed || err != nil || existing.Status != nil {
				t.Fatalf("claim while running = %+v, %v, %v", existing, claimed, err)
			}
			if err := q.CompleteIdempotencyKey(ctx, p.ID, "k1", 200, []byte(`{"ok":true}`)); err != nil {
				t.Fatal(err)
			}
			existing, claimed, err = q.ClaimIdempotencyKey(ctx, k, stale, alive)
			if claimed || err != nil || existing.Status == nil || *existing.Status != 200 || string(existing.Response) != `{"ok":true}` {
				t.Fatalf("claim after completion = %+v, %v, %v", existing, claimed, err)
			}

			// A reservation whose call never finished is taken over once stale.
			k2 := store.IdempotencyKey{ProfileID: p.ID, Key: "k2", Operation: "persona.create", RequestHash: "h", CreatedAt: store.Now().Add(-2 * time.Minute)}
			if _, claimed, _ := q.ClaimIdempotencyKey(ctx, k2, stale, alive); !claimed {
				t.Fatal("first claim of k2 failed")
			}
			k2.CreatedAt = store.Now()
			if _, claimed, err := q.ClaimIdempotencyKey(ctx, k2, stale, alive); !claimed || err != nil {
				t.Fatalf("stale reservation not taken over: %v, %v", claimed, err)
			}
			if err := q.ReleaseIdempotencyKey(ctx, p.ID, "k2"); err != nil {
				t.Fatal(err)
			}
			if _, claimed, _ := q.ClaimIdempotencyKey(ctx, k2, stale, alive); !claimed {
				t.Fatal("released key could not be claimed again")
			}

			// A reservation of a process that has ended is taken over at once, by its
			// owner's name; one of a live process is not.
			k3 := store.IdempotencyKey{ProfileID: p.ID, Key: "k3", Operation: "persona.create", RequestHash: "h", CreatedAt: store.Now(), Owner: "dead"}
			if _, claimed, _ := q.ClaimIdempotencyKey(ctx, k3, stale, alive); !claimed {
				t.Fatal("first claim of k3 failed")
			}
			k3.Owner = "live"
			if _, claimed, _ := q.ClaimIdempotencyKey(ctx, k3, stale, func(string) bool { return false }); claimed {
				t.Fatal("a live process's reservation was taken over")
			}
			gone := func(owner string) bool { return owner == "dead" }
			if got, claimed, err := q.ClaimIdempotencyKey(ctx, k3, stale, gone); !claimed || err != nil || got.Owner != "live" {
				t.Fatalf("a dead process's reservation was not taken over: %+v %v %v", got, claimed, err)
			}
			if _, claimed, _ := q.ClaimIdempotencyKey(ctx, k3, stale, gone); claimed {
				t.Fatal("the reservation taken over was taken again")
			}
		})
	}
}

// alive says of every process that it runs.
func alive(string) bool { return false }

func equalIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSQLitePathWithURICharacters: the data directory may contain characters that mean
// something in a URI; the database must still be created exactly there.
func TestSQLitePathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	s, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "glow.db")); err != nil {
		t.Fatalf("the database is not in the data directory: %v", err)
	}
}

// TestTxRollsBackWhenItsFunctionPanics: a panic inside a transaction rolls it back, so its
// write is gone and the database takes the next writer at once (on SQLite, a transaction
// left open would hold the write lock).
func TestTxRollsBackWhenItsFunctionPanics(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			st := d.Open(t)
			func() {
				defer func() { _ = recover() }()
				_ = st.Tx(context.Background(), func(q store.Q) error {
					if _, err := q.CreateProfile(context.Background(), "ghost", "learner"); err != nil {
						t.Fatal(err)
					}
					panic("a bug")
				})
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := st.Tx(ctx, func(q store.Q) error {
				_, err := q.CreateProfile(ctx, "next", "learner")
				return err
			})
			if err != nil {
				t.Fatalf("the next transaction: %v", err)
			}
			if _, err := st.Q().ProfileByName(ctx, "ghost"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the panicking transaction's write: %v, want it rolled back", err)
			}
		})
	}
}
