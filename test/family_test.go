package test

// The standard family (agent, tool, …; x-glow-family in openapi.yaml): its parity rows and
// its tenancy matrix are derived from the kinds the server describes (handlers.FamilyKinds),
// so a new kind is covered by adding it, and so is the round trip every kind makes.

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/handlers"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/server"
	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

// successes checks the success of each result of a bulk answer.
func successes(want ...bool) func(t *testing.T, b map[string]any) {
	return func(t *testing.T, b map[string]any) {
		t.Helper()
		results, _ := b["results"].([]any)
		if len(results) != len(want) {
			t.Fatalf("%d results, want %d: %v", len(results), len(want), b)
		}
		for i, r := range results {
			if got := r.(map[string]any)["success"]; got != want[i] {
				t.Errorf("item %d: %v, want success %v", i, r, want[i])
			}
		}
	}
}

// familyScenarios are parity rows for every standard operation of every kind: each kind's
// records are made by an editor of sales, by admin (shared) and by an editor of support.
func familyScenarios() []scenario {
	var out []scenario
	for _, k := range handlers.FamilyKinds() {
		if k.Tenancy {
			continue // departments have rows of their own: departmentScenarios
		}
		x, xs := k.Name, k.Plural
		fx := func(s string) string { return x + s }    // fixture names of this kind
		otherDept, remaining := 403, []bool{true, true} // A and Support remain to delete
		if k.SharedReads {
			otherDept, remaining = 200, []bool{true, true, true} // and the copy of Support
		}
		out = append(out,
			scenario{name: "editor creates in bulk, two fail", op: x + ".create", as: "editor",
				body:   fmt.Sprintf(`{%q:[{"name":"Alpha %s","description":"the first"},{"name":"   "},{"name":"Off","department_ids":["{{support}}"]}]}`, xs, x),
				status: 200, capture: map[string]string{fx("A"): "results.0." + x + "_id"}, check: successes(true, false, false)},
			scenario{name: "admin shares one with every department", op: x + ".create", as: "admin",
				body: fmt.Sprintf(`{%q:[{"name":"Shared %s","department_ids":[]}]}`, xs, x), status: 200,
				capture: map[string]string{fx("Shared"): "results.0." + x + "_id"}, check: successes(true)},
			scenario{name: "an editor may not", op: x + ".create", as: "editor",
				body: fmt.Sprintf(`{%q:[{"name":"Mine for all","department_ids":[]}]}`, xs), status: 200, check: successes(false)},
			scenario{name: "support's editor makes one", op: x + ".create", as: "outsider",
				body: fmt.Sprintf(`{%q:[{"name":"Support %s"}]}`, xs, x), status: 200,
				capture: map[string]string{fx("Support"): "results.0." + x + "_id"}},
			scenario{name: "learner may not create", op: x + ".create", as: "learner", body: fmt.Sprintf(`{%q:[{"name":"L"}]}`, xs), status: 403},
			scenario{name: "empty list", op: x + ".create", as: "editor", body: fmt.Sprintf(`{%q:[]}`, xs), status: 422},

			scenario{name: "editor reads theirs", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["can_edit"] != true || pathValue(b, x+".name") != "Alpha "+x {
						t.Errorf("get: %v", b)
					}
				}},
			scenario{name: "the shared one, not editable", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Shared")), status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["can_edit"] != false {
						t.Error("only level 0 may edit a shared record")
					}
				}},
			scenario{name: "another department's", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Support")), status: otherDept},
			scenario{name: "no such record", op: x + ".get", as: "admin", body: fmt.Sprintf(`{"%s_id":"00000000-0000-4000-8000-000000000000"}`, x), status: 404},

			scenario{name: "editor patches three", op: x + ".update", as: "editor",
				body: fmt.Sprintf(`{%q:[{"id":"{{%s}}","name":"Alpha %s II"},{"id":"{{%s}}","name":"Mine"},{"id":"{{%s}}","description":"x"},{"id":"{{%s}}","name":"  "}]}`,
					xs, fx("A"), x, fx("Shared"), fx("Support"), fx("A")),
				status: 200, check: successes(true, false, false, false)},
			scenario{name: "all that a filter selects, but one", op: x + ".update", as: "admin",
				body:   fmt.Sprintf(`{"all":true,"filter":{"search":"%s"},"excluded_ids":["{{%s}}"],"patch":{"description":"patched"}}`, x, fx("Support")),
				status: 200, check: successes(true, true)},
			scenario{name: "a list and all", op: x + ".update", as: "admin",
				body: fmt.Sprintf(`{"all":true,%q:[{"id":"{{%s}}"}]}`, xs, fx("A")), status: 422},
			scenario{name: "neither", op: x + ".update", as: "admin", body: `{}`, status: 422},

			scenario{name: "editor searches", op: x + ".search", as: "editor", body: `{"search":"ALPHA","filter_department_ids":["{{sales}}"]}`, status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["total_count"] != float64(1) || pathValue(b, xs+".0.can_edit") != true {
						t.Errorf("search: %v", b)
					}
				}},
			scenario{name: "a page of one", op: x + ".search", as: "admin", body: `{"page_size":1,"page_offset":1}`, status: 200},

			scenario{name: "copy theirs", op: x + ".duplicate", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 200,
				capture: map[string]string{fx("Copy"): x + "_id"}},
			scenario{name: "copy another department's", op: x + ".duplicate", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Support")), status: otherDept},

			scenario{name: "save a draft", op: x + ".draft", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}","form_state":{"name":"Alpha III"}}`, x, fx("A")), status: 200,
				capture: map[string]string{fx("Draft"): "draft.id"}},
			scenario{name: "a draft naming what does not exist", op: x + ".draft", as: "editor",
				body: `{"form_state":{"department_ids":["00000000-0000-4000-8000-000000000000"]}}`, status: 422},
			scenario{name: "the editor's drafts", op: x + ".drafts", as: "editor", body: `{"search":"alpha"}`, status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["total_count"] != float64(1) {
						t.Errorf("drafts: %v", b)
					}
				}},
			scenario{name: "get with the draft", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}","draft_id":"{{%s}}"}`, x, fx("A"), fx("Draft")), status: 200,
				check: func(t *testing.T, b map[string]any) {
					if pathValue(b, "draft.form_state.name") != "Alpha III" {
						t.Errorf("draft: %v", b)
					}
				}},
			scenario{name: "someone else's draft", op: x + ".get", as: "admin", body: fmt.Sprintf(`{"%s_id":"{{%s}}","draft_id":"{{%s}}"}`, x, fx("A"), fx("Draft")), status: 404},

			scenario{name: "export the editor's scope", op: x + ".export", as: "editor", body: `{}`, status: 200, differ: "the file's name carries the time"},
			scenario{name: "export one", op: x + ".export", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 200},
			scenario{name: "the working group", op: x + ".group", as: "editor", body: `{"name":"week 1"}`, status: 200},
			scenario{name: "report a problem", op: x + ".problem", as: "editor", body: fmt.Sprintf(`{"type":"bug","message":"odd","%s_id":"{{%s}}"}`, x, fx("A")), status: 200},
			scenario{name: "refresh", op: x + ".refresh", as: "editor", body: `{}`, status: 200},
			scenario{name: "a change drafted by the model", op: x + ".generate", as: "editor", body: fmt.Sprintf(`{"instructions":["Make it clearer"],"subject_id":"{{%s}}"}`, fx("A")), status: 200},
			scenario{name: "a change of another department's", op: x + ".generate", as: "editor", body: fmt.Sprintf(`{"instructions":["x"],"subject_id":"{{%s}}","dangerous":true}`, fx("Support")), status: 403},
			scenario{name: "support has no runs", op: x + ".generations", as: "outsider", body: `{}`, status: 200},

			scenario{name: "stage a create", op: x + ".create", as: "editor",
				body:   fmt.Sprintf(`{%q:[{"name":"Staged %s"}],"soft":true,"idempotency_key":"stage-%s"}`, xs, x, x),
				status: 200, capture: map[string]string{fx("Staged"): "results.0." + x + "_id"},
				check: func(t *testing.T, b map[string]any) {
					if b["pending"] != true || pathValue(b, "results.0.success") != true {
						t.Errorf("staged create: %v", b)
					}
				}},
			scenario{name: "the stager sees it pending", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Staged")), status: 200,
				check: func(t *testing.T, b map[string]any) {
					if pathValue(b, x+".pending") != true {
						t.Errorf("a staged record must say so: %v", b)
					}
				}},
			scenario{name: "nobody else sees it", op: x + ".get", as: "admin", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Staged")), status: 404},
			scenario{name: "discard it", op: x + ".create", as: "editor", body: fmt.Sprintf(`{"idempotency_key":"stage-%s","accept":false}`, x), status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["pending"] != false || pathValue(b, "results.0.message") != "discarded" {
						t.Errorf("discarded create: %v", b)
					}
				}},
			scenario{name: "decided already", op: x + ".create", as: "editor", body: fmt.Sprintf(`{"idempotency_key":"stage-%s","accept":true}`, x), status: 409},
			scenario{name: "discarded is gone", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("Staged")), status: 404},
			scenario{name: "stage an update", op: x + ".update", as: "editor",
				body:   fmt.Sprintf(`{%q:[{"id":"{{%s}}","description":"staged"}],"soft":true,"idempotency_key":"stage-up-%s"}`, xs, fx("A"), x),
				status: 200, check: successes(true)},
			scenario{name: "not carried out yet", op: x + ".search", as: "editor", body: `{"search":"staged"}`, status: 200,
				check: func(t *testing.T, b map[string]any) {
					if b["total_count"] != float64(0) {
						t.Errorf("a staged update changed the record: %v", b)
					}
				}},
			scenario{name: "accepting with another operation", op: x + ".delete", as: "editor", body: fmt.Sprintf(`{"idempotency_key":"stage-up-%s","accept":true}`, x), status: 409},
			scenario{name: "carry it out", op: x + ".update", as: "editor", body: fmt.Sprintf(`{"idempotency_key":"stage-up-%s","accept":true}`, x), status: 200, check: successes(true)},
			scenario{name: "nothing staged", op: x + ".update", as: "editor", body: `{"idempotency_key":"never-staged","accept":true}`, status: 404},
			scenario{name: "accept takes nothing else", op: x + ".update", as: "editor", body: fmt.Sprintf(`{"idempotency_key":"stage-up-%s","accept":true,"all":true}`, x), status: 422},
			scenario{name: "soft needs a key", op: x + ".delete", as: "editor", body: fmt.Sprintf(`{"%s_ids":["{{%s}}"],"soft":true}`, x, fx("A")), status: 422},
		)
		if k.Secrets {
			out = append(out,
				scenario{name: "editor sets secrets", op: x + ".update", as: "editor",
					body:   fmt.Sprintf(`{%q:[{"id":"{{%s}}","secrets":{"api_token":"s3cr3t-%s","gone":""}}]}`, xs, fx("A"), x),
					status: 200, check: successes(true)},
				scenario{name: "a secret's name with a space", op: x + ".update", as: "editor",
					body: fmt.Sprintf(`{%q:[{"id":"{{%s}}","secrets":{"api token":"v"}}]}`, xs, fx("A")), status: 200, check: successes(false)},
				scenario{name: "get shows the names only", op: x + ".get", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 200,
					check: func(t *testing.T, b map[string]any) {
						if mustJSON(pathValue(b, x+".secret_names")) != `["api_token"]` || strings.Contains(mustJSON(b), "s3cr3t") {
							t.Errorf("get: %v", b)
						}
					}},
				scenario{name: "editor may not decrypt", op: x + ".decrypt", as: "editor", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 403},
				scenario{name: "admin decrypts", op: x + ".decrypt", as: "admin", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 200,
					check: func(t *testing.T, b map[string]any) {
						if pathValue(b, "secrets.api_token") != "s3cr3t-"+x || len(b["secrets"].(map[string]any)) != 1 {
							t.Errorf("decrypt: %v", b)
						}
					}},
				scenario{name: "decrypt what is gone", op: x + ".decrypt", as: "admin", body: fmt.Sprintf(`{"%s_id":"00000000-0000-4000-8000-000000000000"}`, x), status: 404},
			)
		}
		out = append(out,
			scenario{name: "delete the copy and another's", op: x + ".delete", as: "editor",
				body:   fmt.Sprintf(`{"%s_ids":["{{%s}}","{{%s}}","00000000-0000-4000-8000-000000000000"]}`, x, fx("Copy"), fx("Support")),
				status: 200, check: successes(true, false, false)},
			scenario{name: "delete all that remain but one", op: x + ".delete", as: "admin",
				body:   fmt.Sprintf(`{"all":true,"filter":{"search":%q},"excluded_ids":["{{%s}}"]}`, x, fx("Shared")),
				status: 200, check: successes(remaining...)},
			scenario{name: "gone", op: x + ".get", as: "admin", body: fmt.Sprintf(`{"%s_id":"{{%s}}"}`, x, fx("A")), status: 404},
		)
	}
	return append(out, departmentScenarios...)
}

// departmentScenarios are the department kind's parity rows. A department's record is in
// its own scope: its members read it, admins change it, and its name is the department's.
var departmentScenarios = []scenario{
	{name: "editors may not create departments", op: "department.create", as: "editor", body: `{"departments":[{"name":"Mine"}]}`, status: 403},
	{name: "admin creates, a name taken and a blank one fail", op: "department.create", as: "admin",
		body:   `{"departments":[{"name":"Research","code":"RES"},{"name":"sales"},{"name":"  "}]}`,
		status: 200, capture: map[string]string{"research": "results.0.department_id"}, check: successes(true, false, false)},
	{name: "a member reads theirs", op: "department.get", as: "editor", body: `{"department_id":"{{sales}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "department.name") != "sales" || pathValue(b, "department.timezone") != "UTC" || b["can_edit"] != false ||
				pathValue(b, "department.department_ids") != nil {
				t.Errorf("get: %v", b)
			}
		}},
	{name: "a learner reads theirs", op: "department.get", as: "learner", body: `{"department_id":"{{sales}}"}`, status: 200},
	{name: "not a member", op: "department.get", as: "editor", body: `{"department_id":"{{support}}"}`, status: 403},
	{name: "admin reads the new one", op: "department.get", as: "admin", body: `{"department_id":"{{research}}"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if pathValue(b, "department.code") != "RES" || b["can_edit"] != true {
				t.Errorf("get: %v", b)
			}
		}},
	{name: "a member's search", op: "department.search", as: "editor", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != 1.0 || pathValue(b, "departments.0.name") != "sales" || pathValue(b, "departments.0.can_edit") != false {
				t.Errorf("search: %v", b)
			}
		}},
	{name: "admin searches", op: "department.search", as: "admin", body: `{"search":"RESEARCH"}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != 1.0 {
				t.Errorf("search: %v", b)
			}
		}},
	{name: "rename, and a name taken", op: "department.update", as: "admin",
		body:   `{"departments":[{"id":"{{research}}","name":"Research and development","timezone":"Europe/Berlin"},{"id":"{{research}}","name":"support"}]}`,
		status: 200, check: successes(true, false)},
	{name: "editors may not change departments", op: "department.update", as: "editor", body: `{"departments":[{"id":"{{sales}}","code":"S"}]}`, status: 403},
	{name: "copy one", op: "department.duplicate", as: "admin", body: `{"department_id":"{{research}}"}`, status: 200,
		capture: map[string]string{"researchCopy": "department_id"}},
	{name: "a copy named as another", op: "department.duplicate", as: "admin", body: `{"department_id":"{{research}}","name":"sales"}`, status: 409},
	{name: "a member's draft", op: "department.draft", as: "editor", body: `{"department_id":"{{sales}}","form_state":{"code":"SLS"}}`, status: 200},
	{name: "a member's drafts", op: "department.drafts", as: "editor", body: `{}`, status: 200,
		check: func(t *testing.T, b map[string]any) {
			if b["total_count"] != 1.0 {
				t.Errorf("drafts: %v", b)
			}
		}},
	{name: "export a member's", op: "department.export", as: "editor", body: `{}`, status: 200, differ: "the file's name carries the time"},
	{name: "a working group", op: "department.group", as: "editor", body: `{}`, status: 200},
	{name: "report about one", op: "department.problem", as: "editor", body: `{"type":"question","message":"who runs it?","department_id":"{{sales}}"}`, status: 200},
	{name: "refresh them", op: "department.refresh", as: "admin", body: `{}`, status: 200},
	{name: "a department drafted by the model", op: "department.generate", as: "admin", body: `{"instructions":["A team for field service"]}`, status: 200},
	{name: "editors may not generate one", op: "department.generate", as: "editor", body: `{"instructions":["x"],"subject_id":"{{sales}}"}`, status: 403},
	{name: "a member's runs", op: "department.generations", as: "editor", body: `{}`, status: 200},
	{name: "stage one", op: "department.create", as: "admin", body: `{"departments":[{"name":"Staged team"}],"soft":true,"idempotency_key":"stage-department"}`,
		status: 200, capture: map[string]string{"stagedDepartment": "results.0.department_id"}},
	{name: "accept it", op: "department.create", as: "admin", body: `{"idempotency_key":"stage-department","accept":true}`, status: 200, check: successes(true)},
	{name: "a department with members stays", op: "department.delete", as: "admin",
		body: `{"department_ids":["{{sales}}","{{research}}","{{researchCopy}}","{{stagedDepartment}}"]}`, status: 200, check: successes(false, true, true, true)},
	{name: "the deleted one is gone", op: "department.get", as: "admin", body: `{"department_id":"{{research}}"}`, status: 404},
}

// familyTarget is a record of the tenancy matrix: of the caller's department, another's,
// or shared with every department.
type familyTarget string

const (
	ownDepartment   familyTarget = "own"
	otherDepartment familyTarget = "other"
	sharedRecord    familyTarget = "shared"
)

// TestFamilyTenancy: every standard operation of every kind, by admin, editor and learner
// (of sales), on a record of sales, one of support and a shared one, over HTTP and
// socket.io, on SQLite and PostgreSQL. The expected answer of each cell follows from the
// caller's permissions (as the server resolves them) and the rules: level 0 does anything;
// a read of another department's record is 403 (unless the kind's reads are shared); a
// change of a shared or another department's record fails its item; a create in another
// department, or shared, fails its item below level 0.
func TestFamilyTenancy(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, &server.Options{LocalTokenDelay: time.Millisecond})
			sales, support := env.Department(t, "sales").String(), env.Department(t, "support").String()
			tokens := map[string]string{
				"admin":   env.Admin,
				"editor":  env.Token(t, "tenancy-editor", "editor", "sales"),
				"learner": env.Token(t, "tenancy-learner", "learner", "sales"),
			}
			resolver := auth.NewResolver(env.Server.Store, time.Minute)
			sockets := map[string]*testserver.Client{}
			for role, token := range tokens {
				sockets[role] = env.Dial(t, token)
			}
			cells := 0
			for _, k := range handlers.FamilyKinds() {
				for _, transport := range []string{"http", "socket.io"} {
					call := func(role, op, body string) (int, map[string]any) {
						t.Helper()
						var status int
						var raw []byte
						if transport == "http" {
							res := env.Post(t, tokens[role], "/"+k.Name+"/"+op, body)
							status, raw = res.Status, res.Body
						} else {
							var arg any
							if err := json.Unmarshal([]byte(body), &arg); err != nil {
								t.Fatal(err)
							}
							status, raw = sockets[role].Call(t, k.Name+"."+op, arg)
						}
						var m map[string]any
						_ = json.Unmarshal(raw, &m)
						return status, m
					}
					// One record per target, made by admin; a department's own record is the
					// department (none is shared).
					records := map[familyTarget]string{}
					targets := []familyTarget{ownDepartment, otherDepartment, sharedRecord}
					if k.Tenancy {
						records[ownDepartment], records[otherDepartment] = sales, support
						targets = targets[:2]
					}
					for target, deps := range map[familyTarget]string{ownDepartment: `["` + sales + `"]`, otherDepartment: `["` + support + `"]`, sharedRecord: `[]`} {
						if k.Tenancy {
							break
						}
						_, b := call("admin", "create", fmt.Sprintf(`{%q:[{"name":"%s %s","department_ids":%s}]}`, k.Plural, target, k.Name, deps))
						id, _ := pathValue(b, "results.0."+k.Name+"_id").(string)
						if id == "" {
							t.Fatalf("%s: admin could not create the %s record: %v", transport, target, b)
						}
						records[target] = id
					}
					for _, op := range familyOperations(k.Name) {
						for _, role := range []string{"admin", "editor", "learner"} {
							id, err := resolver.Resolve(context.Background(), tokens[role])
							if err != nil {
								t.Fatal(err)
							}
							for _, target := range targets {
								body, wantStatus, wantSuccess := familyCell(k, op, id.Level, target, records[target], sales, support, cells)
								if !id.Can(k.Name, op) {
									wantStatus, wantSuccess = http.StatusForbidden, nil
								}
								status, b := call(role, op, body)
								cells++
								if status != wantStatus {
									t.Errorf("%s %s.%s as %s on the %s record: %d, want %d: %v", transport, k.Name, op, role, target, status, wantStatus, b)
									continue
								}
								if wantSuccess != nil {
									if got := pathValue(b, "results.0.success"); got != *wantSuccess {
										t.Errorf("%s %s.%s as %s on the %s record: success %v, want %v: %v", transport, k.Name, op, role, target, got, *wantSuccess, b)
									}
								}
								if op == "search" && status == 200 {
									found := strings.Contains(mustJSON(b[k.Plural]), records[target])
									if want := target != otherDepartment || id.Level == 0 || k.SharedReads; found != want {
										t.Errorf("%s %s.search as %s: the %s record found %v, want %v", transport, k.Name, role, target, found, want)
									}
								}
							}
						}
					}
				}
			}
			t.Logf("%d cells", cells)
		})
	}
}

// familyOperations are the standard operations of a kind, from the spec.
func familyOperations(kind string) []string {
	var ops []string
	for _, op := range gen.Operations {
		if op.Family == "standard" && op.Artifact == kind {
			ops = append(ops, op.Name)
		}
	}
	slices.Sort(ops)
	return ops
}

// familyCell is one cell of the tenancy matrix: the body of op on the record (of target),
// the status it must answer when the caller holds the permission, and for bulk changes
// whether its one item must succeed.
func familyCell(k handlers.FamilyKind, op string, level int, target familyTarget, record, sales, support string, cell int) (string, int, *bool) {
	yes, no := true, false
	manage := &no // a change succeeds at level 0, or on a record of one's own department
	if level == 0 || target == ownDepartment {
		manage = &yes
	}
	read := http.StatusOK
	if target == otherDepartment && level != 0 && !k.SharedReads {
		read = http.StatusForbidden
	}
	switch {
	case k.Tenancy && op == "create": // departments are named uniquely, and in their own scope
		return fmt.Sprintf(`{%q:[{"name":"made %d"}]}`, k.Plural, cell), http.StatusOK, manage
	case k.Tenancy && op == "duplicate":
		return fmt.Sprintf(`{"%s_id":%q,"name":"copy %d"}`, k.Name, record, cell), read, nil
	}
	switch op {
	case "create":
		deps := map[familyTarget]string{ownDepartment: `["` + sales + `"]`, otherDepartment: `["` + support + `"]`, sharedRecord: `[]`}[target]
		return fmt.Sprintf(`{%q:[{"name":"made","department_ids":%s}]}`, k.Plural, deps), http.StatusOK, manage
	case "update":
		return fmt.Sprintf(`{%q:[{"id":%q,"description":"changed"}]}`, k.Plural, record), http.StatusOK, manage
	case "delete":
		// Deleting would leave the next cells without their record: a delete that may
		// happen is asked of a copy-to-be-deleted instead (below), so here only refusals
		// are tried for real.
		if *manage {
			return fmt.Sprintf(`{"%s_ids":["00000000-0000-4000-8000-000000000000"]}`, k.Name), http.StatusOK, &no
		}
		return fmt.Sprintf(`{"%s_ids":[%q]}`, k.Name, record), http.StatusOK, &no
	case "search":
		return `{"page_size":200}`, http.StatusOK, nil
	case "drafts", "generations":
		return `{}`, http.StatusOK, nil
	case "group":
		return `{"name":"tenancy"}`, http.StatusOK, nil
	case "draft":
		return fmt.Sprintf(`{"%s_id":%q,"form_state":{"name":"draft"}}`, k.Name, record), read, nil
	case "generate": // a change the model drafts needs the record's departments
		status := http.StatusForbidden
		if *manage {
			status = http.StatusOK
		}
		return fmt.Sprintf(`{"instructions":["x"],"subject_id":%q}`, record), status, nil
	case "problem":
		return fmt.Sprintf(`{"type":"bug","message":"x","%s_id":%q}`, k.Name, record), read, nil
	default: // get, duplicate, export, refresh
		return fmt.Sprintf(`{"%s_id":%q}`, k.Name, record), read, nil
	}
}

// TestFamilyRoundTrip: an agent with models and tools, as an editor uses it: the relations
// are checked (a tool that does not exist fails the item), get lists each relation's
// options with the selected ones first, search counts per facet and filters by it, the
// export's CSV names the linked records, and a deleted tool's links go at refresh.
func TestFamilyRoundTrip(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	editor := env.Token(t, "round-editor", "editor", "sales")
	post := func(path, body string) map[string]any {
		t.Helper()
		res := env.Post(t, editor, path, body)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
		return res.JSON(t)
	}
	tools := post("/tool/create", `{"tools":[{"name":"Lookup","permissions":[{"artifact":"persona","operation":"search"}],"argument_schema":{"type":"object"}},{"name":"Calendar"}]}`)
	lookup, calendar := pathValue(tools, "results.0.tool_id").(string), pathValue(tools, "results.1.tool_id").(string)
	const localModel = "00000000-0000-7000-8000-000000000002"
	agents := post("/agent/create", fmt.Sprintf(`{"agents":[
		{"name":"Coach","instructions":"Be kind","temperature":0.2,"model_ids":[%q],"tool_ids":[%q,%q]},
		{"name":"Critic","tool_ids":[%q]},
		{"name":"Broken","tool_ids":["00000000-0000-4000-8000-000000000000"]}]}`, localModel, calendar, lookup, lookup))
	successes(true, true, false)(t, agents)
	if got := pathValue(agents, "results.2.errors.0.field"); got != "tool_ids" {
		t.Errorf("the missing tool is reported at %v", got)
	}
	coach := pathValue(agents, "results.0.agent_id").(string)

	got := post("/agent/get", fmt.Sprintf(`{"agent_id":%q,"tools":{"limit":5}}`, coach))
	if pathValue(got, "agent.temperature") != 0.2 || pathValue(got, "agent.reasoning_level") != "medium" ||
		fmt.Sprint(pathValue(got, "agent.tool_ids")) != fmt.Sprint([]any{calendar, lookup}) {
		t.Errorf("agent: %v", got["agent"])
	}
	if opts := got["tools"].([]any); len(opts) != 2 || pathValue(got, "tools.0.name") != "Calendar" || pathValue(got, "tools.0.selected") != true {
		t.Errorf("tool options: %v", opts)
	}
	if pathValue(got, "models.0.id") != localModel || pathValue(got, "models.0.selected") != true {
		t.Errorf("model options: %v", got["models"])
	}

	search := post("/agent/search", fmt.Sprintf(`{"filter_tool_ids":[%q]}`, calendar))
	if search["total_count"] != float64(1) || pathValue(search, "agents.0.name") != "Coach" {
		t.Errorf("filtered by a tool: %v", search)
	}
	// The tool facet counts without its own filter: Lookup is in both agents.
	counts := map[string]any{}
	for _, o := range pathValue(search, "tool_filter.options").([]any) {
		counts[o.(map[string]any)["name"].(string)] = o.(map[string]any)["count"]
	}
	if counts["Lookup"] != float64(2) || counts["Calendar"] != float64(1) {
		t.Errorf("tool facet, under a tool filter: %v", counts)
	}

	export := post("/agent/export", fmt.Sprintf(`{"agent_id":%q}`, coach))
	file := post("/system/file/download", fmt.Sprintf(`{"file_id":%q}`, export["file_id"]))
	content, err := base64.StdEncoding.DecodeString(file["content"].(string))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(content))).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("csv: %v %q", err, content)
	}
	cell := func(col string) string { return rows[1][slices.Index(rows[0], col)] }
	if cell("tools") != "Calendar; Lookup" || cell("models") != "Glow local (offline)" || cell("temperature") != "0.2" || cell("departments") != "sales" {
		t.Errorf("csv: %q", content)
	}

	post("/tool/delete", fmt.Sprintf(`{"tool_ids":[%q]}`, calendar))
	refreshed := post("/agent/refresh", `{}`)
	if refreshed["dropped_links"] != float64(1) {
		t.Errorf("refresh: %v", refreshed)
	}
	got = post("/agent/get", fmt.Sprintf(`{"agent_id":%q}`, coach))
	if fmt.Sprint(pathValue(got, "agent.tool_ids")) != fmt.Sprint([]any{lookup}) {
		t.Errorf("after refresh: %v", got["agent"])
	}
}

// TestFamilyRoundTripEveryKind walks each kind of the family through what an editor does
// with it, derived from its descriptor: a record linked to two targets of every relation
// (records of the target kind, personas, profiles, the local model, the editor's
// department), get with each relation's options (the selected ones first, in order),
// search with each facet, a draft and the drafts, a copy, the CSV export downloaded, an
// update of all that a filter selects but one, a soft create accepted and one rejected, and
// a delete. Kinds the seeded editor may not change (sign-in methods) are walked by admin.
func TestFamilyRoundTripEveryKind(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			editor := env.Token(t, "walk-editor", "editor", "sales")
			env.Token(t, "walk-member", "learner", "sales")
			resolver := auth.NewResolver(env.Server.Store, time.Minute)
			editorID, err := resolver.Resolve(context.Background(), editor)
			if err != nil {
				t.Fatal(err)
			}
			profileID := func(name string) string {
				p, err := env.Server.Store.Q().ProfileByName(context.Background(), name)
				if err != nil {
					t.Fatal(err)
				}
				return p.ID.String()
			}
			for _, k := range handlers.FamilyKinds() {
				t.Run(k.Name, func(t *testing.T) {
					token := editor
					if !editorID.Can(k.Name, "create") {
						token = env.Admin
					}
					post := poster(t, env, token)
					created := func(b map[string]any, idKey string) []string {
						t.Helper()
						var out []string
						for i, r := range b["results"].([]any) {
							if r.(map[string]any)["success"] != true {
								t.Fatalf("item %d not created: %v", i, b)
							}
							out = append(out, r.(map[string]any)[idKey].(string))
						}
						return out
					}
					// Two targets of every relation, with their names.
					type target struct{ ids, names []string }
					targets := map[string]target{}
					for _, rel := range k.Relations {
						names := []string{"First " + rel.Name, "Second " + rel.Name}
						if rel.One {
							names = names[:1]
						}
						var ids []string
						switch {
						case rel.Kind != "":
							maker := post // targets the editor may not make are made by admin, shared
							if !editorID.Can(rel.Kind, "create") {
								maker = poster(t, env, env.Admin)
							}
							items := make([]string, len(names))
							for i, name := range names {
								items[i] = fmt.Sprintf(`{"name":%q}`, name)
							}
							ids = created(maker("/"+rel.Kind+"/create", fmt.Sprintf(`{"%ss":[%s]}`, rel.Kind, strings.Join(items, ","))), rel.Kind+"_id")
						case rel.Name == "profiles":
							ids, names = []string{profileID("walk-editor"), profileID("walk-member")}, []string{"walk-editor", "walk-member"}
						default:
							t.Fatalf("no targets for the relation %s: teach this test where they live", rel.Name)
						}
						targets[rel.Key] = target{ids, names}
					}
					sales := env.Department(t, "sales").String()
					links := map[string]any{"department_ids": []string{sales}}
					other := map[string]any{"department_ids": []string{sales}} // the second record: the last target of each
					facets := append(k.Relations, handlers.FamilyRelation{Name: "departments", Key: "department_ids", Facet: "department"})
					if k.Tenancy { // a department is its own scope
						links, other, facets = map[string]any{}, map[string]any{}, k.Relations
					}
					for key, tg := range targets {
						links[key], other[key] = tg.ids, tg.ids[len(tg.ids)-1:]
					}
					item := func(name string, rels map[string]any) string {
						m := map[string]any{"name": name}
						for k, v := range rels {
							m[k] = v
						}
						return mustJSON(m)
					}
					x, xs := k.Name, k.Plural
					ids := created(post("/"+x+"/create", fmt.Sprintf(`{%q:[%s,%s]}`, xs, item("Walk "+x, links), item("Walk other "+x, other))), x+"_id")
					record, second := ids[0], ids[1]

					got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, record))
					for _, rel := range k.Relations {
						tg := targets[rel.Key]
						if fmt.Sprint(pathValue(got, x+"."+rel.Key)) != fmt.Sprint(anySlice(tg.ids)) {
							t.Errorf("%s: %v, want %v", rel.Key, pathValue(got, x+"."+rel.Key), tg.ids)
						}
						for i, name := range tg.names {
							if pathValue(got, fmt.Sprintf("%s.%d.name", rel.Name, i)) != name || pathValue(got, fmt.Sprintf("%s.%d.selected", rel.Name, i)) != true {
								t.Errorf("option %d of %s: %v, want %s selected", i, rel.Name, got[rel.Name], name)
							}
						}
					}
					if pathValue(got, "departments.0.name") != "sales" && !k.Tenancy {
						t.Errorf("departments: %v", got["departments"])
					}

					for _, rel := range facets {
						first, last := sales, sales
						if tg, ok := targets[rel.Key]; ok {
							first, last = tg.ids[0], tg.ids[len(tg.ids)-1]
						}
						search := post("/"+x+"/search", fmt.Sprintf(`{"search":"WALK","filter_%s_ids":[%q]}`, rel.Facet, first))
						want := 1.0
						if first == last {
							want = 2
						}
						if search["total_count"] != want {
							t.Errorf("search by %s: %v matches, want %v", rel.Facet, search["total_count"], want)
						}
						for _, o := range pathValue(search, rel.Facet+"_filter.options").([]any) {
							if o := o.(map[string]any); o["id"] == last && o["count"] != 2.0 {
								t.Errorf("facet %s counts %v for %s, want 2 (without its own filter)", rel.Facet, o["count"], o["name"])
							}
						}
					}

					// The form clears every relation: a draft keeps an emptied list as said.
					form := map[string]any{"name": "Walk " + x + ", edited"}
					for _, rel := range k.Relations {
						form[rel.Key] = []any{}
					}
					draft := post("/"+x+"/draft", mustJSON(map[string]any{x + "_id": record, "form_state": form}))
					drafts := post("/"+x+"/drafts", fmt.Sprintf(`{"%s_id":%q}`, x, record))
					if drafts["total_count"] != 1.0 || pathValue(drafts, "entries.0.id") != pathValue(draft, "draft.id") {
						t.Errorf("drafts: %v", drafts)
					}
					if got := mustJSON(pathValue(drafts, "entries.0.form_state")); got != mustJSON(form) {
						t.Errorf("the draft's form state: %s, want %s", got, mustJSON(form))
					}
					dup := post("/"+x+"/duplicate", fmt.Sprintf(`{"%s_id":%q}`, x, record))
					copyID := dup[x+"_id"].(string)
					copied := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, copyID))
					for _, rel := range k.Relations {
						if fmt.Sprint(pathValue(copied, x+"."+rel.Key)) != fmt.Sprint(pathValue(got, x+"."+rel.Key)) {
							t.Errorf("the copy's %s: %v", rel.Key, pathValue(copied, x+"."+rel.Key))
						}
					}

					export := post("/"+x+"/export", fmt.Sprintf(`{"%s_id":%q}`, x, record))
					file := post("/system/file/download", fmt.Sprintf(`{"file_id":%q}`, export["file_id"]))
					content, err := base64.StdEncoding.DecodeString(file["content"].(string))
					if err != nil {
						t.Fatal(err)
					}
					rows, err := csv.NewReader(strings.NewReader(string(content))).ReadAll()
					if err != nil || len(rows) != 2 {
						t.Fatalf("csv: %v %q", err, content)
					}
					for _, rel := range k.Relations {
						if cell := rows[1][slices.Index(rows[0], rel.Name)]; cell != strings.Join(targets[rel.Key].names, "; ") {
							t.Errorf("csv %s: %q", rel.Name, cell)
						}
					}

					reported := post("/"+x+"/problem", fmt.Sprintf(`{"type":"question","message":"Walk %s: why?","%s_id":%q}`, x, x, record))
					listed := post("/system/activity", fmt.Sprintf(`{"problems_artifact":%q}`, x))
					if listed["problems_count"] != 1.0 || pathValue(listed, "problems.0.problem_id") != reported["problem_id"] ||
						pathValue(listed, "problems.0.subject_id") != record || pathValue(listed, "problems.0.type") != "question" {
						t.Errorf("the %s report in system.activity: %v", x, listed["problems"])
					}
					post("/system/activity/resolve", fmt.Sprintf(`{"problem_id":%q}`, reported["problem_id"]))
					if open := post("/system/activity", fmt.Sprintf(`{"problems_artifact":%q}`, x)); open["problems_count"] != 0.0 {
						t.Errorf("resolved, still open: %v", open["problems"])
					}

					bulk := post("/"+x+"/update", fmt.Sprintf(`{"all":true,"filter":{"search":"walk"},"excluded_ids":[%q],"patch":{"description":"bulk"}}`, record))
					successes(true, true)(t, bulk) // the second record and the copy
					if b := post("/"+x+"/search", `{"search":"bulk"}`); b["total_count"] != 2.0 || strings.Contains(mustJSON(b), record) {
						t.Errorf("after the bulk update: %v", b)
					}

					for _, accept := range []bool{true, false} {
						key := fmt.Sprintf("walk-%s-%v", x, accept)
						staged := post("/"+x+"/create", fmt.Sprintf(`{%q:[{"name":"Staged %s"}],"soft":true,"idempotency_key":%q}`, xs, x, key))
						stagedID := created(staged, x+"_id")[0]
						if b := env.Post(t, env.Admin, "/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, stagedID)); b.Status != http.StatusNotFound && token != env.Admin {
							t.Errorf("a staged record seen by another: %d", b.Status)
						}
						post("/"+x+"/create", fmt.Sprintf(`{"idempotency_key":%q,"accept":%v}`, key, accept))
						want := map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[accept]
						if b := env.Post(t, env.Admin, "/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, stagedID)); b.Status != want {
							t.Errorf("after accept %v: %d, want %d", accept, b.Status, want)
						}
					}

					successes(true, true)(t, post("/"+x+"/delete", fmt.Sprintf(`{"%s_ids":[%q,%q]}`, x, record, second)))
					if b := env.Post(t, token, "/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, record)); b.Status != http.StatusNotFound {
						t.Errorf("after delete: %d", b.Status)
					}
				})
			}
		})
	}
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestFamilyGenerateStagesOrApplies: every kind's generate, with the local model. Without
// dangerous, the drafted record is staged: pending, seen by its caller alone, until the
// soft call the run names is accepted. With dangerous, a change is applied at once. A
// proposal the family refuses fails its run with the reason.
func TestFamilyGenerateStagesOrApplies(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			editor := env.Token(t, "gen-editor", "editor", "sales")
			resolver := auth.NewResolver(env.Server.Store, time.Minute)
			editorID, err := resolver.Resolve(context.Background(), editor)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range handlers.FamilyKinds() {
				t.Run(k.Name, func(t *testing.T) {
					x, token := k.Name, editor
					if !editorID.Can(x, "create") {
						token = env.Admin
					}
					post := poster(t, env, token)
					run := func(body string) map[string]any {
						t.Helper()
						return awaitRun(t, post, post("/"+x+"/generate", body))
					}

					staged := run(`{"instructions":["One that helps with supplier negotiations"]}`)
					if staged["status"] != "completed" {
						t.Fatalf("the staged run: %v", staged)
					}
					key, _ := pathValue(staged, "result.idempotency_key").(string)
					recordID, _ := pathValue(staged, "result."+x+"_id").(string)
					if key == "" || recordID == "" || pathValue(staged, "result.applied") != false ||
						pathValue(staged, "result.operation") != x+".create" {
						t.Fatalf("the staged run's result: %v", staged["result"])
					}
					got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID))
					if pathValue(got, x+".pending") != true || !strings.Contains(fmt.Sprint(pathValue(got, x+".name")), "negotiations") {
						t.Errorf("the staged record: %v", got[x])
					}
					if token != env.Admin {
						if b := env.Post(t, env.Admin, "/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID)); b.Status != http.StatusNotFound {
							t.Errorf("a staged record seen by another: %d", b.Status)
						}
					}
					post("/"+x+"/create", fmt.Sprintf(`{"idempotency_key":%q,"accept":true}`, key))
					if got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID)); pathValue(got, x+".pending") != false {
						t.Errorf("accepted, still pending: %v", got[x])
					}

					applied := run(fmt.Sprintf(`{"instructions":["Rename it for onboarding sessions"],"subject_id":%q,"dangerous":true}`, recordID))
					if applied["status"] != "completed" || pathValue(applied, "result.applied") != true ||
						pathValue(applied, "result.operation") != x+".update" || pathValue(applied, "result.idempotency_key") != nil {
						t.Fatalf("the applied run: %v", applied)
					}
					if got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID)); !strings.Contains(fmt.Sprint(pathValue(got, x+".name")), "onboarding") {
						t.Errorf("the applied change: %v", got[x])
					}

					reviewed := run(fmt.Sprintf(`{"instructions":["Focus it on renewals"],"subject_id":%q}`, recordID))
					key, _ = pathValue(reviewed, "result.idempotency_key").(string)
					if reviewed["status"] != "completed" || key == "" || pathValue(reviewed, "result.operation") != x+".update" {
						t.Fatalf("the staged change: %v", reviewed)
					}
					if got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID)); strings.Contains(fmt.Sprint(pathValue(got, x+".name")), "renewals") {
						t.Errorf("a staged change was applied: %v", got[x])
					}
					post("/"+x+"/update", fmt.Sprintf(`{"idempotency_key":%q,"accept":true}`, key))
					if got := post("/"+x+"/get", fmt.Sprintf(`{"%s_id":%q}`, x, recordID)); !strings.Contains(fmt.Sprint(pathValue(got, x+".name")), "renewals") {
						t.Errorf("the accepted change: %v", got[x])
					}
				})
			}
		})
	}
}

// TestFamilyGenerateChecksTheModel: a generate's proposal passes the door a client's
// request passes. An OpenAI-compatible server plays the model: fields the schema refuses
// are left out (the record keeps its default), fields the kind does not have are ignored,
// an answer with no JSON object fails the run, and so does a record the kind's check
// refuses; the request the server got names the kind and its fields.
func TestFamilyGenerateChecksTheModel(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	fake := providerStartFake(t)
	res := env.Post(t, env.Admin, "/provider/create", map[string]any{"providers": []any{map[string]any{
		"name": "fake openai", "kind": "openai", "base_url": fake.url + "/v1", "secrets": map[string]any{"api_key": providerKey}}}})
	providerID := pathValue(res.JSON(t), "results.0.provider_id")
	res = env.Post(t, env.Admin, "/model/create", map[string]any{"models": []any{map[string]any{
		"name": "Fake GPT", "provider_model": providerModel, "provider_ids": []any{providerID}}}})
	modelID := pathValue(res.JSON(t), "results.0.model_id")
	editor := env.Token(t, "gen-model-editor", "editor", "sales")

	post := poster(t, env, editor)
	run := func(artifact, answer string) map[string]any {
		t.Helper()
		fake.set(providerScript{deltas: []string{answer[:len(answer)/2], answer[len(answer)/2:]}})
		return awaitRun(t, post, post("/"+artifact+"/generate", map[string]any{"instructions": []string{"Draft one"}, "model_id": modelID, "dangerous": true}))
	}

	r := run("agent", "Here it is:\n```json\n{\"name\":\"Supplier coach\",\"temperature\":7,\"reasoning_level\":\"high\",\"owner\":\"me\"}\n```")
	if r["status"] != "completed" {
		t.Fatalf("a proposal with a field out of range: %v", r)
	}
	agentID := pathValue(r, "result.agent_id")
	got := post("/agent/get", map[string]any{"agent_id": agentID})
	if pathValue(got, "agent.name") != "Supplier coach" || pathValue(got, "agent.temperature") != 0.7 ||
		pathValue(got, "agent.reasoning_level") != "high" || pathValue(got, "agent.pending") != false {
		t.Errorf("the applied agent: %v", got["agent"])
	}
	last := fake.requests()[len(fake.requests())-1]
	if prompt := fmt.Sprint(last.body["messages"]); !strings.Contains(prompt, "Artifact: Agent") || !strings.Contains(prompt, "reasoning_level") {
		t.Errorf("the model was asked: %s", prompt)
	}

	if r := run("agent", "I would rather not."); r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "no JSON object") {
		t.Errorf("an answer without a record: %v", r)
	}
	if r := run("rubric", `{"name":"Too strict","total_points":10,"pass_points":20}`); r["status"] != "failed" ||
		!strings.Contains(fmt.Sprint(r["error"]), "more points to pass") {
		t.Errorf("a rubric its check refuses: %v", r)
	}
	if b := post("/rubric/search", `{"search":"Too strict"}`); b["total_count"] != 0.0 {
		t.Errorf("a refused proposal was stored: %v", b)
	}
}

// poster posts as token, wanting 200, and answers the response body.
func poster(t *testing.T, env *testserver.Env, token string) func(path string, body any) map[string]any {
	return func(path string, body any) map[string]any {
		t.Helper()
		res := env.Post(t, token, path, body)
		if res.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, res.Status, res.Body)
		}
		return res.JSON(t)
	}
}

// awaitRun waits for the run a generate started to end, and answers it.
func awaitRun(t *testing.T, post func(string, any) map[string]any, started map[string]any) map[string]any {
	t.Helper()
	runID := pathValue(started, "run.id")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := post("/system/run/get", map[string]any{"run_id": runID})["run"].(map[string]any)
		if s := r["status"]; s == "completed" || s == "failed" || s == "stopped" {
			return r
		}
	}
	t.Fatalf("run %v did not end", runID)
	return nil
}

// TestDepartmentsAreTheirRecords: a department's record of the family is the department
// profiles, personas and records belong to. One made with department.create is the one a
// token names; a rename renames it; a delete is refused while it has members and removes
// it otherwise; a staged department is no department until it is accepted, and then only
// if its name is still free. Departments made outside the family have their record too.
func TestDepartmentsAreTheirRecords(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			env := testserver.Start(t, d, nil)
			admin := poster(t, env, env.Admin)
			created := func(b map[string]any) string {
				t.Helper()
				id, _ := pathValue(b, "results.0.department_id").(string)
				if id == "" || pathValue(b, "results.0.success") != true {
					t.Fatalf("not created: %v", b)
				}
				return id
			}
			ops := created(admin("/department/create", `{"departments":[{"name":"Ops","code":"OPS"}]}`))
			editor := env.Token(t, "ops-editor", "editor", "Ops")
			if got := env.Department(t, "Ops").String(); got != ops {
				t.Fatalf("the token's department is %s, the record %s", got, ops)
			}
			member := poster(t, env, editor)
			if b := member("/department/search", `{}`); b["total_count"] != 1.0 || pathValue(b, "departments.0.id") != ops {
				t.Errorf("the member's departments: %v", b)
			}
			agent := pathValue(member("/agent/create", `{"agents":[{"name":"Ops agent"}]}`), "results.0.agent_id")
			if got := member("/agent/get", map[string]any{"agent_id": agent}); fmt.Sprint(pathValue(got, "agent.department_ids")) != "["+ops+"]" {
				t.Errorf("the member's agent: %v", got["agent"])
			}

			successes(true)(t, admin("/department/update", fmt.Sprintf(`{"departments":[{"id":%q,"name":"Operations"}]}`, ops)))
			if got := env.Department(t, "Operations").String(); got != ops {
				t.Errorf("renamed, the department is %s, want %s", got, ops)
			}
			successes(false)(t, admin("/department/delete", fmt.Sprintf(`{"department_ids":[%q]}`, ops)))
			if b := member("/department/get", map[string]any{"department_id": ops}); pathValue(b, "department.name") != "Operations" {
				t.Errorf("after the refused delete: %v", b)
			}

			empty := created(admin("/department/create", `{"departments":[{"name":"Empty"}]}`))
			successes(true)(t, admin("/department/delete", fmt.Sprintf(`{"department_ids":[%q]}`, empty)))
			if got := env.Department(t, "Empty").String(); got == empty {
				t.Errorf("a deleted department came back")
			}

			staged := created(admin("/department/create", `{"departments":[{"name":"Later"}],"soft":true,"idempotency_key":"later"}`))
			if got := env.Department(t, "Later").String(); got == staged {
				t.Errorf("a staged department is a department already")
			}
			if res := env.Post(t, env.Admin, "/department/create", `{"idempotency_key":"later","accept":true}`); res.Status != http.StatusConflict {
				t.Errorf("accepting a department whose name was taken meanwhile: %d %s", res.Status, res.Body)
			}

			legacy := env.Department(t, "legacy").String()
			if b := admin("/department/get", map[string]any{"department_id": legacy}); pathValue(b, "department.name") != "legacy" {
				t.Errorf("a department made outside the family: %v", b)
			}
		})
	}
}
