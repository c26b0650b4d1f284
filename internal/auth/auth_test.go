package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func TestParseBearer(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", " BEARER x": "x"} {
		if got, ok := auth.ParseBearer(in); !ok || got != want {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "Bearer", "Bearer ", "Basic abc", "abc"} {
		if got, ok := auth.ParseBearer(in); ok {
			t.Errorf("ParseBearer(%q) = %q, want no token", in, got)
		}
	}
}

func TestResolveCachesUntilForgotten(t *testing.T) {
	ctx := context.Background()
	st := testdb.Dialects(t)[0].Open(t)
	var issued auth.Issued
	err := st.Tx(ctx, func(q store.Q) (err error) {
		issued, err = auth.Issue(ctx, q, "ada", "editor", "test", "sales")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	cached := auth.NewResolver(st, time.Minute)
	uncached := auth.NewResolver(st, 0)
	for _, r := range []*auth.Resolver{cached, uncached} {
		id, err := r.Resolve(ctx, issued.Token)
		if err != nil || id.ProfileName != "ada" || id.Role != "editor" || id.Level != 1 || len(id.DepartmentIDs) != 1 || !id.Can("persona", "create") || id.Can("profile", "emulate") {
			t.Fatalf("identity: %+v, %v", id, err)
		}
	}
	if _, err := st.Q().RevokeToken(ctx, issued.Session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := uncached.Resolve(ctx, issued.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("revoked token without a cache: %v", err)
	}
	if _, err := cached.Resolve(ctx, issued.Token); err != nil {
		t.Fatalf("the cache should still trust the token until told: %v", err)
	}
	cached.Forget(issued.Session.ID)
	if _, err := cached.Resolve(ctx, issued.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("revoked token after Forget: %v", err)
	}
	for _, bad := range []string{"", "glow_unknown", "not-a-glow-token"} {
		if _, err := cached.Resolve(ctx, bad); !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("Resolve(%q): %v", bad, err)
		}
	}
}
