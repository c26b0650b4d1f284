package auth

import (
	"context"
	"slices"
	"testing"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func TestIdentitiesOfARoleShareItsPermissions(t *testing.T) {
	ctx := context.Background()
	st := testdb.Dialects(t)[0].Open(t)
	var ids []*Identity
	for _, name := range []string{"ada", "grace"} {
		err := st.Tx(ctx, func(q store.Q) error {
			issued, err := Issue(ctx, q, name, "editor", "test")
			if err != nil {
				return err
			}
			id, err := ProfileIdentity(ctx, q, issued.Profile.ID)
			ids = append(ids, id)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := ids[0].Permissions, ids[1].Permissions
	if len(a) == 0 || len(a) != cap(a) || &a[0] != &b[0] {
		t.Fatalf("two editors hold two lists (len %d cap %d, %p and %p)", len(a), cap(a), &a[0], &b[0])
	}

	// A role whose list changed gets the new list; identities made before keep theirs.
	changed := append([]store.Permission{{Artifact: "zz", Operation: "new"}}, a...)
	got := sharedPermissions("editor", changed)
	if len(got) != len(a)+1 || &got[0] == &a[0] || len(ids[0].Permissions) != len(a) {
		t.Fatalf("changed list: got %d permissions, kept %d", len(got), len(ids[0].Permissions))
	}
	if again := sharedPermissions("editor", slices.Clone(changed)); &again[0] != &got[0] {
		t.Fatal("the changed list is not shared")
	}
}
