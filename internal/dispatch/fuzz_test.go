package dispatch_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/events"
)

// fuzzOps are the operations the fuzz target calls: reads and writes whose bodies nest
// arrays, objects, enums, uuids and free text. The input's first byte picks one.
var fuzzOps = []string{"persona.search", "persona.create", "persona.update", "persona.draft", "persona.problem",
	"attempt.chat_get", "attempt.chat_message", "persona.watch", "system.subscribe", "system.activity_search"}

// fuzzAnswers are the statuses a call may answer whatever its body; 500 is not among them.
var fuzzAnswers = map[int]bool{200: true, 400: true, 403: true, 404: true, 409: true, 422: true, 429: true}

// FuzzDispatch sends any bytes as the body of an operation through the whole dispatcher —
// parse, validate, decode, the real handlers on SQLite, encode — as an editor with a
// socket. Whatever the bytes, the answer is a status of fuzzAnswers with a JSON body, and
// nothing panics. The corpus is in testdata/fuzz/FuzzDispatch; make test runs the target
// for a bounded time.
func FuzzDispatch(f *testing.F) {
	r := newRealRig(f, "editor")
	r.events.Join(events.ProfileTopic(r.id.ProfileID)) // lifecycle events are built, as for a caller with a socket
	if err := r.runner.Start(context.Background()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(r.runner.Close)
	d, callerCtx := r.d, r.ctx

	for i, body := range []string{
		`{}`, `{"search":"école","page_size":5}`, `{"personas":[{"name":"x","department_ids":[{}]}]}`,
		`{"personas":[{"name":"a\u0000b"}]}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"search":"` + "\xff\xfe" + `"}`, `{"chat_id":"00000000-0000-4000-8000-000000000000","text":"hi"}`,
		`{"run_ids":[{}]}`, `{"topics":[{"topic":"profile/x","since":-1}]}`, `{"type":"bug","message":"m","a":1,"b":2}`,
	} {
		f.Add(byte(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, pick byte, body []byte) {
		name := fuzzOps[int(pick)%len(fuzzOps)]
		o, ok := gen.OperationByID(name)
		if !ok {
			t.Fatalf("no operation %s", name)
		}
		res := d.Do(callerCtx, o, body, dispatch.SocketIO)
		if !fuzzAnswers[res.Status] {
			t.Fatalf("%s %q: status %d %s", name, body, res.Status, res.Body)
		}
		if !json.Valid(res.Body) {
			t.Fatalf("%s %q: the answer is not JSON: %q", name, body, res.Body)
		}
		if res.Status == http.StatusOK && name == "attempt.chat_message" {
			// A reply started: stop it, so that runs do not pile up over the inputs.
			var out struct {
				ReplyRunID *string `json:"reply_run_id"`
			}
			if json.Unmarshal(res.Body, &out) == nil && out.ReplyRunID != nil {
				stopOp, _ := gen.OperationByID("system.run_stop")
				d.Do(callerCtx, stopOp, []byte(`{"run_id":"`+*out.ReplyRunID+`"}`), dispatch.SocketIO)
			}
		}
	})
}
