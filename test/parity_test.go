// Package test holds the end-to-end suites that drive a real glow server the way its users
// do: the parity table over HTTP and socket.io, and the Node socket.io-client scripts.
package test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
	"github.com/glowhq/glow/store"
)

// scenario is one call and what it must answer. The body is JSON text in which {{name}}
// stands for a record of the fixture; it is POSTed as is over HTTP and sent as the event's
// argument over socket.io (the decoded value, or the text itself when it is not JSON).
type scenario struct {
	name    string
	op      string
	as      string // actor: admin, editor, learner (both in "sales"), outsider (editor in "support")
	body    string
	status  int
	capture map[string]string // fixture name → dotted path in the response body
	check   func(t *testing.T, body map[string]any)

	socketStatus int    // when socket.io answers otherwise (subscriptions need a socket)
	differ       string // why the bodies differ by design (only the statuses are compared)
	waitRun      string // a run (fixture name) that must be running before the call
}

// scenarios is the parity table. Rows run in order, so later rows see earlier rows' writes.
// Every operation needs a successful row; generic rows (malformed JSON, schema violations,
// no token) are added for every operation by genericScenarios.
var scenarios = []scenario{
	// persona
	{name: "editor creates in bulk, one item fails", op: "persona.create", as: "editor",
		body:    `{"personas":[{"name":"Eve","description":"sceptical buyer"},{"name":"   "},{"name":"Off","department_ids":["{{support}}"]}]}`,
		status:  200,
		capture: map[string]string{"eve": "results.0.persona_id"},
		check: func(t *testing.T, b map[string]any) {
			want := []bool{true, false, false}
			for i, r := range b["results"].([]any) {
				if got := r.(map[string]any)["success"]; got != want[i] {
					t.Errorf("item %d success = %v, want %v", i, got, want[i])
				}
			}
		}},
	{name: "learner may not create", op: "persona.create", as: "learner", body: `{"personas":[{"name":"X"}]}`, status: 403},
	{name: "empty list", op: "persona.create", as: "editor", body: `{"personas":[]}`, status: 422},
	// What a hostile or careless client sends is refused at the door, the same over both.
	{name: "objects where unique ids are asked", op: "persona.create", as: "editor", body: `{"personas":[{"name":"x","department_ids":[{}]}]}`, status: 422,
		check: func(t *testing.T, b map[string]any) {
			if got := pathValue(b, "errors.0.location"); got != "body.personas[0].department_ids[0]" {
				t.Errorf("error at %v", got)
			}
		}},
	{name: "arrays where unique ids are asked", op: "persona.create", as: "editor", body: `{"personas":[{"name":"x","department_ids":[[1],[]]}]}`, status: 422},
	{name: "NUL in a string", op: "persona.search", as: "editor", body: `{"search":"a\u0000b"}`, status: 422},
	{name: "nesting deeper than 32 levels", op: "persona.search", as: "editor", body: `{"search":"x","extra":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, status: 400},
	{name: "thousands of unknown keys", op: "persona.search", as: "editor", body: manyKeys(3000), status: 422,
		check: func(t *testing.T, b map[string]any) {
			if errs, _ := b["errors"].([]any); len(errs) != 51 {
				t.Errorf("%d errors reported, want 50 and one that counts the rest", len(errs))
			}
		}},
	{name: "first call with a key", op: "persona.create", as: "editor",
		body: `{"personas":[{"name":"Once"}],"idempotency_key":"create-1"}`, status: 200, capture: map[string]string{"once": "results.0.persona_id"}},
	{name: "replay with the same key and body", op: "persona.create", as: "editor",
		body: `{"personas":[{"name":"Once"}],"idempotency_key":"create-1"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if id := pathValue(b, "results.0.persona_id"); id == nil {
				t.Error("replay lost the persona id")
			}
		}},
	{name: "same key, other body", op: "persona.create", as: "editor",
		body: `{"personas":[{"name":"Twice"}],"idempotency_key":"create-1"}`, status: 409},

	{name: "learner reads a sales persona", op: "persona.get", as: "learner", body: `{"persona_id":"{{salesPersona}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["can_edit"] != false || b["can_delete"] != false {
				t.Errorf("a learner can edit or delete: %v", b)
			}
		}},
	{name: "editor reads the shared persona, cannot edit it", op: "persona.get", as: "editor", body: `{"persona_id":"{{shared}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["can_edit"] != false {
				t.Error("only level 0 may edit a shared persona")
			}
		}},
	{name: "other department", op: "persona.get", as: "learner", body: `{"persona_id":"{{supportPersona}}"}`, status: 403},
	{name: "no such persona", op: "persona.get", as: "admin", body: `{"persona_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},
	{name: "not a uuid", op: "persona.get", as: "admin", body: `{"persona_id":"nope"}`, status: 422},

	{name: "editor renames", op: "persona.update", as: "editor",
		body:   `{"personas":[{"id":"{{eve}}","name":"Eve II","department_ids":["{{sales}}"]},{"id":"{{shared}}","name":"Mine"},{"id":"00000000-0000-4000-8000-000000000000","name":"Ghost"}]}`,
		status: 200,
		check: func(t *testing.T, b map[string]any) {
			want := []string{"updated", "you may not change this persona", "persona not found"}
			for i, r := range b["results"].([]any) {
				if got := r.(map[string]any)["message"]; got != want[i] {
					t.Errorf("item %d: %v, want %q", i, got, want[i])
				}
			}
		}},
	{name: "editor cannot share a persona with everyone", op: "persona.update", as: "editor",
		body: `{"personas":[{"id":"{{eve}}","department_ids":[]}]}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "results.0.success") != false {
				t.Error("a level 1 editor made a persona shared")
			}
		}},
	{name: "learner may not update", op: "persona.update", as: "learner", body: `{"personas":[{"id":"{{eve}}","name":"Hack"}]}`, status: 403},

	{name: "learner searches within scope", op: "persona.search", as: "learner", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			for _, row := range b["personas"].([]any) {
				if row.(map[string]any)["name"] == "Support Stan" {
					t.Error("a sales learner sees a support persona")
				}
			}
		}},
	{name: "admin filters and pages", op: "persona.search", as: "admin",
		body: `{"search":"s","filter_department_ids":["{{sales}}"],"page_size":1,"page_offset":1}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if len(b["personas"].([]any)) != 1 || b["total_count"].(float64) < 2 {
				t.Errorf("page: %v", b)
			}
		}},
	{name: "page too large", op: "persona.search", as: "admin", body: `{"page_size":500}`, status: 422},

	{name: "editor duplicates", op: "persona.duplicate", as: "editor", body: `{"persona_id":"{{salesPersona}}"}`, status: 200,
		capture: map[string]string{"copy": "persona_id"}},
	{name: "duplicate out of scope", op: "persona.duplicate", as: "editor", body: `{"persona_id":"{{supportPersona}}"}`, status: 403},
	{name: "duplicate missing", op: "persona.duplicate", as: "editor", body: `{"persona_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},

	{name: "editor deletes", op: "persona.delete", as: "editor", body: `{"persona_ids":["{{copy}}","{{shared}}"]}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "results.0.success") != true || pathValue(b, "results.1.success") != false {
				t.Errorf("delete results: %v", b)
			}
		}},
	{name: "deleted persona is gone", op: "persona.get", as: "editor", body: `{"persona_id":"{{copy}}"}`, status: 404},
	{name: "learner may not delete", op: "persona.delete", as: "learner", body: `{"persona_ids":["{{salesPersona}}"]}`, status: 403},

	{name: "editor saves a draft", op: "persona.draft", as: "editor",
		body:   `{"persona_id":"{{salesPersona}}","form_state":{"name":"Sue, angrier","department_ids":["{{sales}}"]}}`,
		status: 200, capture: map[string]string{"draft": "draft.id"}},
	{name: "draft names an unknown department", op: "persona.draft", as: "editor",
		body: `{"form_state":{"department_ids":["00000000-0000-4000-8000-000000000000"]}}`, status: 422},
	{name: "draft of an out-of-scope persona", op: "persona.draft", as: "editor",
		body: `{"persona_id":"{{supportPersona}}","form_state":{}}`, status: 403},
	{name: "get with a draft", op: "persona.get", as: "editor", body: `{"persona_id":"{{salesPersona}}","draft_id":"{{draft}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "draft.form_state.name") != "Sue, angrier" {
				t.Errorf("draft: %v", b["draft"])
			}
		}},
	{name: "someone else's draft", op: "persona.get", as: "admin", body: `{"persona_id":"{{salesPersona}}","draft_id":"{{draft}}"}`, status: 404},

	{name: "editor lists drafts", op: "persona.drafts", as: "editor", body: `{"search":"ANGRIER"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != float64(1) {
				t.Errorf("drafts: %v", b)
			}
		}},
	{name: "drafts with a bad date", op: "persona.drafts", as: "editor", body: `{"date_from":"yesterday"}`, status: 422},

	{name: "editor exports", op: "persona.export", as: "editor", body: `{}`, status: 200, capture: map[string]string{"file": "file_id"}},
	{name: "export one missing persona", op: "persona.export", as: "editor", body: `{"persona_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},

	{name: "editor opens a group", op: "persona.group", as: "editor", body: `{"name":"session one"}`, status: 200,
		capture: map[string]string{"group": "group_id"}},
	{name: "and gets it back within the window", op: "persona.group", as: "editor", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["reused"] != true || b["name"] != "session one" {
				t.Errorf("group: %v", b)
			}
		}},
	{name: "someone else's group", op: "persona.group", as: "admin", body: `{"group_id":"{{group}}"}`, status: 404},

	{name: "learner reports a bug", op: "persona.problem", as: "learner", body: `{"type":"bug","message":"Sue repeats herself","persona_id":"{{salesPersona}}"}`, status: 200,
		capture: map[string]string{"learnerProblem": "problem_id"}},
	{name: "unknown report type", op: "persona.problem", as: "learner", body: `{"type":"rant","message":"x"}`, status: 422},
	{name: "report on an out-of-scope persona", op: "persona.problem", as: "learner", body: `{"type":"bug","message":"x","persona_id":"{{supportPersona}}"}`, status: 403},

	{name: "learner starts an attempt", op: "attempt.start", as: "learner", body: `{"persona_id":"{{salesPersona}}"}`, status: 200,
		capture: map[string]string{"chat": "chat_id", "attempt": "attempt_id"}},
	{name: "attempt out of scope", op: "attempt.start", as: "learner", body: `{"persona_id":"{{supportPersona}}"}`, status: 403},
	{name: "attempt on a missing persona", op: "attempt.start", as: "learner", body: `{"persona_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},

	{name: "the attempt counts at once", op: "persona.get", as: "learner", body: `{"persona_id":"{{salesPersona}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "persona.attempt_count") != float64(1) {
				t.Errorf("attempt_count: %v", pathValue(b, "persona.attempt_count"))
			}
		}},
	{name: "editor refreshes the counts", op: "persona.refresh", as: "editor", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if mustJSON(b["refreshed"]) != `["links","attempt_count"]` {
				t.Errorf("refreshed: %v", b)
			}
		}},
	{name: "refresh out of scope", op: "persona.refresh", as: "editor", body: `{"persona_id":"{{supportPersona}}"}`, status: 403},
	{name: "refreshed count shows", op: "persona.get", as: "learner", body: `{"persona_id":"{{salesPersona}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "persona.attempt_count") != float64(1) {
				t.Errorf("attempt_count: %v", pathValue(b, "persona.attempt_count"))
			}
		}},

	{name: "learner writes", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"{{chat}}","text":"Hello Sue","idempotency_key":"m1"}`, status: 200,
		capture: map[string]string{"m1": "message.id", "reply1": "reply_run_id"}},
	{name: "a retried message is stored once", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"{{chat}}","text":"Hello Sue","idempotency_key":"m1"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "reply_run_id") == nil {
				t.Error("the replayed answer lost its reply run")
			}
		}},
	{name: "the persona's reply", op: "attempt.watch", as: "learner", body: `{"run_ids":["{{reply1}}"],"timeout_seconds":30}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "runs.0.status") != "completed" || pathValue(b, "timed_out") != false || !strings.Contains(pathValue(b, "runs.0.output").(string), "Sue") {
				t.Errorf("reply: %v", b)
			}
		}},
	{name: "a reply to the first message", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"{{chat}}","text":"Still there?","parent_message_id":"{{m1}}"}`, status: 200,
		capture: map[string]string{"reply2": "reply_run_id"}},
	{name: "and its reply", op: "attempt.watch", as: "learner", body: `{"run_ids":["{{reply2}}"],"timeout_seconds":30}`, status: 200},
	{name: "someone else's chat", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"{{outsiderChat}}","text":"hi"}`, status: 403},
	{name: "no such chat", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"00000000-0000-4000-8000-000000000000","text":"hi"}`, status: 404},
	{name: "empty text", op: "attempt.chat_message", as: "learner", body: `{"chat_id":"{{chat}}","text":""}`, status: 422},

	{name: "learner reads the chat", op: "attempt.chat_get", as: "learner", body: `{"chat_id":"{{chat}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			ms := b["messages"].([]any)
			roles := []string{"user", "assistant", "user", "assistant"}
			for i, m := range ms {
				if i < len(roles) && m.(map[string]any)["role"] != roles[i] {
					t.Errorf("message %d is %v", i, m)
				}
			}
			if len(ms) != 4 || pathValue(b, "messages.2.parent_message_id") != pathValue(b, "messages.0.id") ||
				pathValue(b, "messages.3.parent_message_id") != pathValue(b, "messages.2.id") || b["reply"] != nil || b["last_seq"].(float64) < 4 {
				t.Errorf("chat: %v", b)
			}
		}},
	{name: "an editor may not read a learner's chat", op: "attempt.chat_get", as: "editor", body: `{"chat_id":"{{chat}}"}`, status: 403},
	{name: "level 0 may", op: "attempt.chat_get", as: "admin", body: `{"chat_id":"{{chat}}"}`, status: 200},
	{name: "no such chat to read", op: "attempt.chat_get", as: "learner", body: `{"chat_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},

	// profile and system
	{name: "learner's context", op: "profile.context", as: "learner", body: `{}`, status: 200,
		capture: map[string]string{"learnerSession": "session_id"},
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "role.name") != "learner" || pathValue(b, "departments.0.name") != "sales" {
				t.Errorf("context: %v", b)
			}
		}},
	{name: "health", op: "system.health", as: "learner", body: `{}`, status: 200},
	{name: "own session", op: "system.session", as: "learner", body: `{}`, status: 200},
	{name: "a stream ticket", op: "system.stream_ticket", as: "learner", body: `{}`, status: 200,
		differ: "every ticket is new", check: func(t *testing.T, body map[string]any) {
			if ticket, _ := body["ticket"].(string); !strings.HasPrefix(ticket, "glst_") || body["expires_at"] == nil {
				t.Errorf("stream ticket %v, want a glst_ ticket and its expiry", body)
			}
		}},
	{name: "another's session", op: "system.session", as: "editor", body: `{"session_id":"{{learnerSession}}"}`, status: 403},
	{name: "level 0 reads any session", op: "system.session", as: "admin", body: `{"session_id":"{{learnerSession}}"}`, status: 200},
	{name: "no such session", op: "system.session", as: "admin", body: `{"session_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},
	{name: "editor downloads the export", op: "system.file_download", as: "editor", body: `{"file_id":"{{file}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			csv, _ := base64.StdEncoding.DecodeString(b["content"].(string))
			if !strings.HasPrefix(string(csv), "id,name,description") || !strings.Contains(string(csv), "Eve II") {
				t.Errorf("export: %q", csv)
			}
		}},
	{name: "someone else's file", op: "system.file_download", as: "learner", body: `{"file_id":"{{file}}"}`, status: 403},
	{name: "no such file", op: "system.file_download", as: "editor", body: `{"file_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},

	// generation runs
	{name: "editor drafts a persona", op: "persona.generate", as: "editor", body: `{"instructions":["A procurement manager who negotiates hard on delivery times"]}`, status: 200,
		capture: map[string]string{"draftRun": "run.id"},
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "run.status") != "queued" || pathValue(b, "run.kind") != "record_draft" || !strings.HasPrefix(pathValue(b, "run.topic").(string), "run/") {
				t.Errorf("run: %v", b)
			}
		}},
	{name: "the draft run ends", op: "persona.watch", as: "editor", body: `{"run_ids":["{{draftRun}}"],"timeout_seconds":30}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "runs.0.status") != "completed" || pathValue(b, "runs.0.result.idempotency_key") == nil || !strings.HasPrefix(pathValue(b, "runs.0.output").(string), "{") {
				t.Errorf("draft run: %v", b)
			}
		}},
	{name: "a learner may not draft personas", op: "persona.generate", as: "learner", body: `{"instructions":["x"]}`, status: 403},
	{name: "applying to an out-of-scope persona", op: "persona.generate", as: "editor", body: `{"instructions":["x"],"subject_id":"{{supportPersona}}","dangerous":true}`, status: 403},
	{name: "an unknown model", op: "persona.generate", as: "editor", body: `{"instructions":["x"],"model_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},
	{name: "nothing to go on: the run asks", op: "persona.generate", as: "editor", body: `{}`, status: 200,
		capture: map[string]string{"askRun": "run.id"}},
	{name: "watch returns when a run asks", op: "persona.watch", as: "editor", body: `{"run_ids":["{{askRun}}"],"timeout_seconds":30}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "runs.0.status") != "interrupted" || !strings.Contains(pathValue(b, "runs.0.question").(string), "What kind of persona") {
				t.Errorf("asking run: %v", b)
			}
		}},
	{name: "a run waiting for an answer cannot pause", op: "system.run_pause", as: "editor", body: `{"run_id":"{{askRun}}"}`, status: 409},
	{name: "the answer", op: "system.run_answer", as: "editor", body: `{"run_id":"{{askRun}}","answer":"A calm hotel manager who books conference rooms"}`, status: 200},
	{name: "the answered run ends", op: "persona.watch", as: "editor", body: `{"run_ids":["{{askRun}}"],"timeout_seconds":30}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "runs.0.status") != "completed" || !strings.Contains(pathValue(b, "runs.0.output").(string), "hotel") {
				t.Errorf("answered run: %v", b)
			}
		}},
	{name: "another question, stopped", op: "persona.generate", as: "editor", body: `{}`, status: 200, capture: map[string]string{"stopRun": "run.id"}},
	{name: "it asks too", op: "persona.watch", as: "editor", body: `{"run_ids":["{{stopRun}}"],"timeout_seconds":30}`, status: 200},
	{name: "stop it", op: "system.run_stop", as: "editor", body: `{"run_id":"{{stopRun}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "run.status") != "stopped" {
				t.Errorf("stopped: %v", b)
			}
		}},
	{name: "a stopped run stays stopped", op: "system.run_stop", as: "editor", body: `{"run_id":"{{stopRun}}"}`, status: 409},
	{name: "nor answers", op: "system.run_answer", as: "editor", body: `{"run_id":"{{stopRun}}","answer":"x"}`, status: 409},
	{name: "someone else's run", op: "system.run_get", as: "learner", body: `{"run_id":"{{draftRun}}"}`, status: 404},
	{name: "the draft run", op: "system.run_get", as: "editor", body: `{"run_id":"{{draftRun}}"}`, status: 200},
	{name: "the editor's persona runs", op: "persona.generations", as: "editor", body: `{"page_limit":10}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != float64(3) {
				t.Errorf("generations: %v", b)
			}
		}},

	// providers, models, and runs on a slow model (their standard operations are also in
	// familyScenarios: these rows are what is theirs alone)
	{name: "admin adds a provider", op: "provider.create", as: "admin",
		body:   `{"providers":[{"name":"ollama","kind":"openai","base_url":"http://127.0.0.1:1/v1","secrets":{"api_key":"sk-secret"}}]}`,
		status: 200, capture: map[string]string{"provider": "results.0.provider_id"}, check: successes(true)},
	{name: "an openai provider needs a URL", op: "provider.create", as: "admin", body: `{"providers":[{"name":"bad","kind":"openai"}]}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "results.0.success") != false || pathValue(b, "results.0.errors.0.field") != "base_url" {
				t.Errorf("create: %v", b)
			}
		}},
	{name: "the provider shows its key by name", op: "provider.get", as: "admin", body: `{"provider_id":"{{provider}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if mustJSON(pathValue(b, "provider.secret_names")) != `["api_key"]` || strings.Contains(mustJSON(b), "sk-secret") {
				t.Errorf("provider: %v", b)
			}
		}},
	{name: "admin reads the key", op: "provider.decrypt", as: "admin", body: `{"provider_id":"{{provider}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "secrets.api_key") != "sk-secret" {
				t.Errorf("decrypt: %v", b)
			}
		}},
	{name: "editors may not read keys", op: "provider.decrypt", as: "editor", body: `{"provider_id":"{{provider}}"}`, status: 403},
	{name: "admin adds a model", op: "model.create", as: "admin",
		body:   `{"models":[{"name":"Llama 3","provider_model":"llama3","provider_ids":["{{provider}}"]}]}`,
		status: 200, capture: map[string]string{"model": "results.0.model_id"}, check: successes(true)},
	{name: "a model of a provider that does not exist, or of none", op: "model.create", as: "admin",
		body:   `{"models":[{"name":"x","provider_ids":["00000000-0000-4000-8000-000000000000"]},{"name":"y","provider_ids":[]}]}`,
		status: 200, check: successes(false, false)},
	{name: "a model of two providers", op: "model.create", as: "admin",
		body: `{"models":[{"name":"y","provider_ids":["{{provider}}","{{localProvider}}"]}]}`, status: 422},
	{name: "a slow local model", op: "model.create", as: "admin", body: `{"models":[{"name":"Slow","provider_model":"glow-local","token_delay_ms":2000}]}`, status: 200,
		capture: map[string]string{"slowModel": "results.0.model_id"}, check: successes(true)},
	{name: "its provider is the embedded one", op: "model.get", as: "editor", body: `{"model_id":"{{slowModel}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "model.provider_ids.0") != store.LocalProviderID.String() {
				t.Errorf("model: %v", b)
			}
		}},
	{name: "a keyless provider", op: "provider.decrypt", as: "admin", body: `{"provider_id":"{{localProvider}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if mustJSON(b["secrets"]) != `{}` {
				t.Errorf("decrypt: %v", b)
			}
		}},
	{name: "rename it and drop its key", op: "provider.update", as: "admin", body: `{"providers":[{"id":"{{provider}}","name":"ollama-1","secrets":{"api_key":""}}]}`, status: 200,
		check: successes(true)},
	{name: "the key is gone", op: "provider.get", as: "admin", body: `{"provider_id":"{{provider}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if mustJSON(pathValue(b, "provider.secret_names")) != `[]` || pathValue(b, "provider.name") != "ollama-1" {
				t.Errorf("provider: %v", b)
			}
		}},
	{name: "models by provider", op: "model.search", as: "editor", body: `{"filter_provider_ids":["{{provider}}"]}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != float64(1) || pathValue(b, "models.0.name") != "Llama 3" {
				t.Errorf("search: %v", b)
			}
		}},
	{name: "the default model stays the default", op: "model.update", as: "admin", body: `{"models":[{"id":"{{localModel}}","is_default":false}]}`, status: 200,
		check: successes(false)},
	{name: "another model takes the default", op: "model.update", as: "admin", body: `{"models":[{"id":"{{model}}","is_default":true}]}`, status: 200,
		check: successes(true)},
	{name: "the former default says so", op: "model.get", as: "admin", body: `{"model_id":"{{localModel}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "model.is_default") != false {
				t.Errorf("model: %v", b)
			}
		}},
	{name: "a copy of the default is not the default", op: "model.duplicate", as: "admin", body: `{"model_id":"{{model}}","name":"Llama copy"}`, status: 200,
		capture: map[string]string{"modelCopy": "model_id"}},
	{name: "the copy", op: "model.get", as: "admin", body: `{"model_id":"{{modelCopy}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "model.is_default") != false || pathValue(b, "model.provider_model") != "llama3" {
				t.Errorf("the copy: %v", b)
			}
		}},
	{name: "the embedded model takes it back", op: "model.update", as: "admin", body: `{"models":[{"id":"{{localModel}}","is_default":true}]}`, status: 200,
		check: successes(true)},
	{name: "a run on the slow model", op: "persona.generate", as: "editor", body: `{"instructions":["A patient teacher"],"model_id":"{{slowModel}}"}`, status: 200,
		capture: map[string]string{"slowRun": "run.id"}},
	{name: "pause it", op: "system.run_pause", as: "editor", body: `{"run_id":"{{slowRun}}"}`, status: 200, waitRun: "slowRun"},
	{name: "a paused run does not pause again, it stays", op: "system.run_pause", as: "editor", body: `{"run_id":"{{slowRun}}"}`, status: 200},
	{name: "resume it", op: "system.run_resume", as: "editor", body: `{"run_id":"{{slowRun}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "run.status") != "running" {
				t.Errorf("resumed: %v", b)
			}
		}},
	{name: "a running run does not resume", op: "system.run_resume", as: "editor", body: `{"run_id":"{{slowRun}}"}`, status: 409},
	{name: "stop it mid-way", op: "system.run_stop", as: "editor", body: `{"run_id":"{{slowRun}}"}`, status: 200},
	{name: "a provider with models stays", op: "provider.delete", as: "admin", body: `{"provider_ids":["{{provider}}"]}`, status: 200,
		check: successes(false)},
	{name: "delete its models, not the default", op: "model.delete", as: "admin", body: `{"model_ids":["{{model}}","{{modelCopy}}","{{localModel}}"]}`, status: 200,
		check: successes(true, true, false)},
	{name: "delete the provider", op: "provider.delete", as: "admin", body: `{"provider_ids":["{{provider}}"]}`, status: 200, check: successes(true)},
	{name: "the default model's provider cannot go", op: "provider.delete", as: "admin", body: `{"provider_ids":["{{localProvider}}"]}`, status: 200,
		check: successes(false)},

	{name: "a text run about a profile", op: "profile.generate", as: "learner", body: `{"instructions":["What can I practise here?"]}`, status: 200,
		capture: map[string]string{"profileRun": "run.id"}},
	{name: "about another profile", op: "profile.generate", as: "learner", body: `{"instructions":["x"],"subject_id":"{{editorProfile}}"}`, status: 403},
	{name: "a system run", op: "system.generate", as: "admin", body: `{"instructions":["Summarise the week"]}`, status: 200, capture: map[string]string{"systemRun": "run.id"}},
	{name: "a system run takes no subject", op: "system.generate", as: "admin", body: `{"instructions":["x"],"subject_id":"{{shared}}"}`, status: 422},
	{name: "a provider drafted by the model", op: "provider.generate", as: "admin", body: `{"instructions":["An in-house vLLM server"]}`, status: 200, capture: map[string]string{"providerRun": "run.id"}},
	{name: "a change of a model drafted by the model", op: "model.generate", as: "admin", body: `{"instructions":["Describe it for learners"],"subject_id":"{{slowModel}}"}`, status: 200, capture: map[string]string{"modelRun": "run.id"}},
	{name: "a reply on demand", op: "attempt.generate", as: "learner", body: `{"chat_id":"{{chat}}"}`, status: 200, capture: map[string]string{"reply3": "run.id"}},
	{name: "they end", op: "profile.watch", as: "learner", body: `{"run_ids":["{{profileRun}}"],"timeout_seconds":30}`, status: 200},
	{name: "a profile run is not a system run", op: "system.watch", as: "admin", body: `{"run_ids":["{{profileRun}}"]}`, status: 404},
	{name: "the system run ends", op: "system.watch", as: "admin", body: `{"run_ids":["{{systemRun}}"],"timeout_seconds":30}`, status: 200},
	{name: "the provider run ends", op: "provider.watch", as: "admin", body: `{"run_ids":["{{providerRun}}"],"timeout_seconds":30}`, status: 200},
	{name: "the model run ends", op: "model.watch", as: "admin", body: `{"run_ids":["{{modelRun}}"],"timeout_seconds":30}`, status: 200},
	{name: "the reply ends", op: "attempt.watch", as: "learner", body: `{"run_ids":["{{reply3}}"],"timeout_seconds":30}`, status: 200},
	{name: "the learner's profile runs", op: "profile.generations", as: "learner", body: `{}`, status: 200},
	{name: "the admin's system runs", op: "system.generations", as: "admin", body: `{}`, status: 200},
	{name: "the admin's provider runs", op: "provider.generations", as: "admin", body: `{}`, status: 200},
	{name: "the admin's model runs", op: "model.generations", as: "admin", body: `{}`, status: 200},
	{name: "the learner's replies", op: "attempt.generations", as: "learner", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != float64(3) {
				t.Errorf("replies: %v", b)
			}
		}},

	// subscriptions live on a socket; presence counts sockets
	{name: "follow a topic", op: "system.subscribe", as: "learner", body: `{"topics":[{"topic":"profile/{{learnerProfile}}","since":0}]}`,
		status: 400, socketStatus: 200},
	{name: "follow someone else's topic", op: "system.subscribe", as: "learner", body: `{"topics":[{"topic":"profile/{{editorProfile}}"}]}`,
		status: 400, socketStatus: 403},
	{name: "metrics are for level 0", op: "system.subscribe", as: "editor", body: `{"topics":[{"topic":"system/metrics"}]}`,
		status: 400, socketStatus: 403},
	{name: "not a topic", op: "system.subscribe", as: "learner", body: `{"topics":[{"topic":"chat/x"}]}`, status: 422},
	{name: "stop following", op: "system.unsubscribe", as: "learner", body: `{"topics":["profile/{{learnerProfile}}"]}`, status: 400, socketStatus: 200},
	{name: "who is online", op: "system.activity", as: "admin", body: `{}`, status: 200,
		differ: "only the socket.io server has sockets open"},
	{name: "presence", op: "system.activity_search", as: "editor", body: `{"state":"active"}`, status: 200,
		differ: "only the socket.io server has sockets open"},

	// reported problems: listed by system.activity in scope, resolved with system.activity_resolve
	{name: "the department's open problems", op: "system.activity", as: "editor", body: `{"problems_artifact":"persona"}`, status: 200,
		differ: "only the socket.io server has sockets open",
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "problems.0.message") != "Sue repeats herself" || pathValue(b, "problems.0.resolved") != false ||
				pathValue(b, "problems.0.subject_id") == nil || b["problems_count"] != float64(1) {
				t.Errorf("problems: %v %v", b["problems"], b["problems_count"])
			}
		}},
	{name: "another department's problems", op: "system.activity", as: "outsider", body: `{}`, status: 200,
		differ: "only the socket.io server has sockets open",
		check: func(t *testing.T, b map[string]any) {
			for _, p := range b["problems"].([]any) {
				if p.(map[string]any)["message"] == "Sue repeats herself" {
					t.Errorf("a support editor sees a sales learner's report")
				}
			}
		}},
	{name: "learners may not resolve", op: "system.activity_resolve", as: "learner", body: `{"problem_id":"{{learnerProblem}}"}`, status: 403},
	{name: "resolve out of scope", op: "system.activity_resolve", as: "outsider", body: `{"problem_id":"{{learnerProblem}}"}`, status: 404},
	{name: "resolve an unknown problem", op: "system.activity_resolve", as: "editor", body: `{"problem_id":"00000000-0000-4000-8000-000000000000"}`, status: 404},
	{name: "resolve", op: "system.activity_resolve", as: "editor", body: `{"problem_id":"{{learnerProblem}}"}`, status: 200,
		differ: "resolved_at is the time of each server's call",
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "problem.resolved") != true || pathValue(b, "problem.resolved_by") == nil {
				t.Errorf("resolved: %v", b)
			}
		}},
	{name: "no longer open", op: "system.activity", as: "editor", body: `{"problems_artifact":"persona"}`, status: 200,
		differ: "only the socket.io server has sockets open",
		check: func(t *testing.T, b map[string]any) {
			if b["problems_count"] != float64(0) {
				t.Errorf("open problems: %v", b["problems"])
			}
		}},
	{name: "the resolved ones", op: "system.activity", as: "admin", body: `{"problems_resolved":true,"problems_page_size":1}`, status: 200,
		differ: "only the socket.io server has sockets open",
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "problems.0.message") != "Sue repeats herself" || pathValue(b, "problems.0.resolved") != true {
				t.Errorf("resolved problems: %v", b["problems"])
			}
		}},
	{name: "open again", op: "system.activity_resolve", as: "editor", body: `{"problem_id":"{{learnerProblem}}","resolved":false}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "problem.resolved") != false || pathValue(b, "problem.resolved_at") != nil {
				t.Errorf("reopened: %v", b)
			}
		}},
}

// genericScenarios adds, for every operation, a malformed body, a body breaking the schema
// and (over HTTP) a call without a token.
// manyKeys is a persona.search body with n unknown keys.
func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString(`{"search":"x"`)
	for i := range n {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	return b.String() + "}"
}

func genericScenarios() []scenario {
	var out []scenario
	for _, op := range gen.Operations {
		out = append(out,
			scenario{name: "malformed JSON", op: op.ID, as: "admin", body: `{"broken": `, status: 400},
			scenario{name: "empty body", op: op.ID, as: "admin", body: ``, status: 400},
			scenario{name: "not an object", op: op.ID, as: "admin", body: `[1,2]`, status: 422},
			scenario{name: "unexpected property", op: op.ID, as: "admin", body: `{"no_such_field":true}`, status: 422},
		)
	}
	return out
}

func TestParityHTTPAndSocketIO(t *testing.T) {
	checkCoverage(t)
	table := append(append(append([]scenario(nil), scenarios...), familyScenarios()...), genericScenarios()...)
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			// One server per transport, seeded alike; every row runs on both.
			viaHTTP := newSide(t, d, false)
			viaSocket := newSide(t, d, true)
			for _, sc := range table {
				t.Run(sc.op+"/"+sc.name, func(t *testing.T) {
					if sc.waitRun != "" {
						viaHTTP.waitRunning(t, sc.waitRun)
						viaSocket.waitRunning(t, sc.waitRun)
					}
					hs, hb := viaHTTP.call(t, sc)
					ss, sb := viaSocket.call(t, sc)
					wantSocket := sc.status
					if sc.socketStatus != 0 {
						wantSocket = sc.socketStatus
					}
					if hs != sc.status || ss != wantSocket {
						t.Fatalf("status: HTTP %d, socket.io %d, want %d and %d\nHTTP: %s\nsocket.io: %s", hs, ss, sc.status, wantSocket, hb, sb)
					}
					viaHTTP.validate(t, sc.op, hs, hb)
					viaSocket.validate(t, sc.op, ss, sb)
					if sc.differ == "" && wantSocket == sc.status {
						hn, sn := viaHTTP.normalize(t, hb), viaSocket.normalize(t, sb)
						if !reflect.DeepEqual(hn, sn) {
							t.Fatalf("bodies differ\nHTTP:      %s\nsocket.io: %s", mustJSON(hn), mustJSON(sn))
						}
					}
					for name, path := range sc.capture {
						viaHTTP.capture(t, name, hb, path)
						viaSocket.capture(t, name, sb, path)
					}
					if sc.check != nil {
						var m map[string]any
						_ = json.Unmarshal(hb, &m)
						sc.check(t, m)
					}
				})
			}
		})
	}
}

// TestUnauthenticatedCalls: over HTTP every operation but the public ones answers 401
// without a token; over socket.io no socket gets that far (the handshake is refused).
func TestUnauthenticatedCalls(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	for _, op := range gen.Operations {
		res := env.Post(t, "", op.Path, `{}`)
		want := http.StatusUnauthorized
		if op.Public {
			want = http.StatusOK
		}
		if res.Status != want {
			t.Errorf("%s without a token: %d, want %d: %s", op.ID, res.Status, want, res.Body)
		}
		if want == http.StatusUnauthorized {
			if p := res.JSON(t); p["status"] != float64(401) || res.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s: 401 is not a problem document: %s", op.ID, res.Body)
			}
		}
		if res := env.Post(t, "glow_not-a-token", op.Path, `{}`); res.Status != http.StatusUnauthorized {
			t.Errorf("%s with a bad token: %d, want 401", op.ID, res.Status)
		}
	}
	for _, token := range []string{"", "glow_not-a-token"} {
		if _, err := env.DialErr(t, token); err == nil || err.Error() != "unauthorized" {
			t.Errorf("socket.io handshake with token %q: %v, want unauthorized", token, err)
		}
	}
}

// checkCoverage fails when an operation of the spec has no successful scenario.
func checkCoverage(t *testing.T) {
	covered := map[string]bool{}
	for _, sc := range append(append([]scenario(nil), scenarios...), familyScenarios()...) {
		if _, ok := gen.OperationByID(sc.op); !ok {
			t.Errorf("scenario %q names unknown operation %q", sc.name, sc.op)
		}
		if sc.status == http.StatusOK || sc.socketStatus == http.StatusOK {
			covered[sc.op] = true
		}
	}
	for _, op := range gen.Operations {
		if !covered[op.ID] {
			t.Errorf("operation %s has no successful parity scenario", op.ID)
		}
	}
}

// side is one server and how the suite calls it: HTTP, or socket.io with one socket per actor.
type side struct {
	env     *testserver.Env
	tokens  map[string]string
	sockets map[string]*testserver.Client
	names   map[string]string // fixture name → id
}

// waitRunning waits until a run (a fixture name) is running.
func (s *side) waitRunning(t *testing.T, name string) {
	t.Helper()
	id, err := uuid.Parse(s.names[name])
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		run, err := s.env.Server.Store.Q().RunByID(context.Background(), id)
		if err == nil && run.Status == store.RunRunning {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never ran: %+v %v", name, run, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSide(t *testing.T, d testdb.Dialect, socketIO bool) *side {
	env := testserver.Start(t, d, &server.Options{LocalTokenDelay: 5 * time.Millisecond})
	grantEditors(t, env, "auth", "provider", "model") // the seeded roles leave these to admins
	s := &side{env: env, names: map[string]string{}, tokens: map[string]string{
		"admin":    env.Admin,
		"editor":   env.Token(t, "editor", "editor", "sales"),
		"learner":  env.Token(t, "learner", "learner", "sales"),
		"outsider": env.Token(t, "outsider", "editor", "support"),
	}}
	s.names["sales"] = env.Department(t, "sales").String()
	s.names["support"] = env.Department(t, "support").String()
	s.names["localProvider"] = store.LocalProviderID.String()
	s.names["localModel"] = store.LocalModelID.String()
	for _, actor := range []string{"learner", "editor"} {
		p, err := env.Server.Store.Q().ProfileByName(context.Background(), actor)
		if err != nil {
			t.Fatal(err)
		}
		s.names[actor+"Profile"] = p.ID.String()
	}

	// The same starting records on every side, made over HTTP.
	res := env.Post(t, env.Admin, "/persona/create", fmt.Sprintf(`{"personas":[
		{"name":"Shared Sam","description":"talks to everyone"},
		{"name":"Sales Sue","description":"a tough buyer","department_ids":[%q]},
		{"name":"Support Stan","description":"an angry caller","department_ids":[%q]}]}`, s.names["sales"], s.names["support"]))
	for i, name := range []string{"shared", "salesPersona", "supportPersona"} {
		s.capture(t, name, res.Body, fmt.Sprintf("results.%d.persona_id", i))
	}
	res = env.Post(t, s.tokens["outsider"], "/attempt/start", fmt.Sprintf(`{"persona_id":%q}`, s.names["supportPersona"]))
	s.capture(t, "outsiderChat", res.Body, "chat_id")

	if socketIO {
		s.sockets = map[string]*testserver.Client{}
		for actor, token := range s.tokens {
			s.sockets[actor] = env.Dial(t, token)
		}
	}
	return s
}

var placeholder = regexp.MustCompile(`\{\{(\w+)\}\}`)

func (s *side) call(t *testing.T, sc scenario) (int, []byte) {
	t.Helper()
	body := placeholder.ReplaceAllStringFunc(sc.body, func(m string) string {
		name := m[2 : len(m)-2]
		id, ok := s.names[name]
		if !ok {
			t.Fatalf("body refers to {{%s}}, which no earlier scenario captured", name)
		}
		return id
	})
	op, _ := gen.OperationByID(sc.op)
	if s.sockets == nil {
		res := s.env.Post(t, s.tokens[sc.as], op.Path, body)
		return res.Status, res.Body
	}
	var arg any = body // not JSON: sent as text, which the server reads as JSON text
	var decoded any
	if err := json.Unmarshal([]byte(body), &decoded); err == nil {
		arg = decoded
	}
	if body == "" {
		arg = nil // no argument at all
	}
	return s.sockets[sc.as].Call(t, sc.op, arg)
}

func (s *side) capture(t *testing.T, name string, body []byte, path string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("capture %s: %v: %s", name, err, body)
	}
	v, ok := pathValue(m, path).(string)
	if !ok {
		t.Fatalf("capture %s: no string at %s in %s", name, path, body)
	}
	s.names[name] = v
}

// validate checks the body against the spec: the operation's response schema, or Problem.
func (s *side) validate(t *testing.T, op string, status int, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	c := s.env.Server.Dispatch.Contract()
	errs := c.ValidateSchema("Problem", v)
	if status == http.StatusOK {
		errs = c.ValidateResponse(op, v)
	}
	if errs != nil {
		t.Fatalf("body breaks the spec: %+v\n%s", errs, body)
	}
}

var (
	uuidPattern  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	timePattern  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
	inTextUUID   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	inTextTime   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)|\d{8}T\d{6}Z`)
	volatileKeys = map[string]bool{"uptime_seconds": true, "waited_seconds": true}
	// timingKeys may be present on one server and not yet on the other.
	timingKeys = map[string]bool{"started_at": true}
)

// normalize decodes a body and replaces what legitimately differs between two servers: ids
// of the fixture become their names, other ids and times become placeholders, and an
// exported file's content is compared as normalized text.
func (s *side) normalize(t *testing.T, body []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body is not JSON: %s", body)
	}
	byID := map[string]string{}
	for name, id := range s.names {
		byID[id] = "<" + name + ">"
	}
	text := func(str string) string {
		str = inTextUUID.ReplaceAllStringFunc(str, func(id string) string {
			if n, ok := byID[id]; ok {
				return n
			}
			return "<uuid>"
		})
		return inTextTime.ReplaceAllString(str, "<time>")
	}
	var walk func(key string, v any) any
	walk = func(key string, v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				if !timingKeys[k] {
					out[k] = walk(k, e)
				}
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(key, e)
			}
			return out
		case string:
			switch {
			case key == "content":
				if raw, err := base64.StdEncoding.DecodeString(x); err == nil {
					return text(string(raw))
				}
			case uuidPattern.MatchString(x):
				if n, ok := byID[x]; ok {
					return n
				}
				return "<uuid>"
			case timePattern.MatchString(x):
				return "<time>"
			}
			return text(x)
		case float64:
			if volatileKeys[key] {
				return "<n>"
			}
		}
		return v
	}
	return walk("", v)
}

// pathValue follows a dotted path ("results.0.persona_id") through decoded JSON.
func pathValue(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[part]
		case []any:
			var i int
			if _, err := fmt.Sscan(part, &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
