package test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/node"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// TestAReservationOfADeadProcessIsTakenOver: a server killed while a call with an
// idempotency key ran left the key reserved, unfinished. A retry after the restart runs the
// call at once instead of answering 409 "still running" for minutes; a reservation of a
// process that still runs keeps answering 409.
func TestAReservationOfADeadProcessIsTakenOver(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			ctx := context.Background()
			admin, err := env.Server.Store.Q().ProfileByName(ctx, "admin")
			if err != nil {
				t.Fatal(err)
			}
			host := strings.Split(node.Self(), "/")[0]
			dead := exec.Command("true")
			if err := dead.Run(); err != nil {
				t.Skipf("cannot run a child process: %v", err)
			}
			for key, owner := range map[string]string{
				"of-a-dead-process": fmt.Sprintf("%s/%d/0123456789ab", host, dead.Process.Pid),
				"of-a-live-process": fmt.Sprintf("elsewhere/%d/0123456789ab", dead.Process.Pid),
			} {
				reserved := store.IdempotencyKey{ProfileID: admin.ID, Key: key, Operation: "persona.create",
					RequestHash: "left by a call that never finished", CreatedAt: store.Now(), Owner: owner}
				if _, ok, err := env.Server.Store.Q().ClaimIdempotencyKey(ctx, reserved, store.Now().Add(-5*time.Minute), func(string) bool { return false }); !ok || err != nil {
					t.Fatalf("reserve %s: %v %v", key, ok, err)
				}
			}
			body := func(key string) map[string]any {
				return map[string]any{"personas": []map[string]any{{"name": "Retried"}}, "idempotency_key": key}
			}
			if res := env.Post(t, env.Admin, "/persona/create", body("of-a-dead-process")); res.Status != http.StatusOK {
				t.Fatalf("retry of a dead process's call: %d %s", res.Status, res.Body)
			}
			if res := env.Post(t, env.Admin, "/persona/create", body("of-a-live-process")); res.Status != http.StatusConflict {
				t.Fatalf("retry of a live process's call: %d %s", res.Status, res.Body)
			}
		})
	}
}
