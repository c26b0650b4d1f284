package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/store"
)

func TestRunsRoundTrip(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()
			p, _ := q.CreateProfile(ctx, "ada", "editor")
			model, err := q.DefaultModel(ctx)
			if err != nil || model.Name != "glow-local" || !model.IsDefault {
				t.Fatalf("seeded default model: %+v %v", model, err)
			}
			now := store.Now()
			subject := store.NewID()
			r := store.Run{ID: store.NewID(), Artifact: "persona", Kind: "persona_draft", Topic: "run/x", ProfileID: p.ID,
				SubjectID: &subject, ModelID: &model.ID, Status: store.RunQueued, Input: []byte(`{"instructions":"Be Bob"}`),
				CreatedAt: now, UpdatedAt: now}
			if err := q.InsertRun(ctx, r); err != nil {
				t.Fatal(err)
			}
			got, err := q.RunByID(ctx, r.ID)
			if err != nil || got.Status != store.RunQueued || string(got.Input) != `{"instructions":"Be Bob"}` || got.Result != nil || got.Error != nil {
				t.Fatalf("RunByID: %+v %v", got, err)
			}
			if active, err := q.ActiveRunOn(ctx, subject, "persona_draft"); err != nil || active.ID != r.ID {
				t.Fatalf("ActiveRunOn: %+v %v", active, err)
			}
			got.Status, got.Output, got.OutputSeq, got.Progress = store.RunRunning, "Name: Bob", 7, 40
			if err := q.UpdateRun(ctx, got); err != nil {
				t.Fatal(err)
			}
			// A conditional write from a status the run no longer has writes nothing.
			stale := got
			stale.Status = store.RunPaused
			if ok, err := q.UpdateRunFrom(ctx, stale, store.RunQueued); ok || err != nil {
				t.Fatalf("UpdateRunFrom(queued) on a running run: %v %v", ok, err)
			}
			got.Status, got.Result, got.FinishedAt = store.RunCompleted, []byte(`{"draft_id":"d"}`), &now
			if ok, err := q.UpdateRunFrom(ctx, got, store.RunRunning); !ok || err != nil {
				t.Fatalf("UpdateRunFrom(running): %v %v", ok, err)
			}
			got, _ = q.RunByID(ctx, r.ID)
			if got.Output != "Name: Bob" || got.OutputSeq != 7 || got.Progress != 40 || string(got.Result) != `{"draft_id":"d"}` || got.Status != store.RunCompleted {
				t.Fatalf("after update: %+v", got)
			}
			if _, err := q.ActiveRunOn(ctx, subject, "persona_draft"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("finished run still active: %v", err)
			}
			if rs, err := q.RunsWithStatus(ctx, store.RunQueued, store.RunRunning); err != nil || len(rs) != 0 {
				t.Fatalf("RunsWithStatus: %v %v", rs, err)
			}
			rs, total, err := q.ListRuns(ctx, store.RunFilter{ProfileID: p.ID, Artifact: "persona", Text: "BOB"}, 10, 0)
			if err != nil || total != 1 || len(rs) != 1 {
				t.Fatalf("ListRuns: %d %v", total, err)
			}
		})
	}
}

// TestProvidersAndModels: saving a provider or a model creates it and then writes it; one
// model is the default; a deleted provider takes its models; and AdoptProviders gives those
// without a record theirs, the API key among its secrets.
func TestProvidersAndModels(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()
			now := store.Now()
			prov := store.Provider{ID: store.NewID(), Name: "ollama", Kind: store.ProviderOpenAI, BaseURL: "http://127.0.0.1:11434/v1",
				APIKey: "sk-first", CreatedAt: now, UpdatedAt: now}
			if err := q.SaveProvider(ctx, prov); err != nil {
				t.Fatal(err)
			}
			prov.APIKey, prov.BaseURL = "sk-second", "http://127.0.0.1:11435/v1"
			if err := q.SaveProvider(ctx, prov); err != nil {
				t.Fatal(err)
			}
			if got, err := q.ProviderByID(ctx, prov.ID); err != nil || got.APIKey != "sk-second" || got.BaseURL != prov.BaseURL {
				t.Fatalf("the provider saved twice: %+v %v", got, err)
			}
			delay := 5
			m := store.Model{ID: store.NewID(), ProviderID: prov.ID, Name: "llama3", Label: "Llama 3", IsDefault: true, TokenDelayMS: &delay, CreatedAt: now, UpdatedAt: now}
			if err := q.SaveModel(ctx, m); err != nil {
				t.Fatal(err)
			}
			def, err := q.DefaultModel(ctx)
			if err != nil || def.ID != m.ID || def.TokenDelayMS == nil || *def.TokenDelayMS != 5 {
				t.Fatalf("the new default: %+v %v", def, err)
			}
			local := uuid.MustParse("00000000-0000-7000-8000-000000000002") // the embedded model
			if was, err := q.ModelByID(ctx, local); err != nil || was.IsDefault {
				t.Fatalf("the former default: %+v %v", was, err)
			}
			if n, err := q.ProviderModels(ctx, prov.ID); err != nil || n != 1 {
				t.Fatalf("the provider's models: %d %v", n, err)
			}

			owner, err := q.CreateProfile(ctx, "owner", "admin") // adopts them
			if err != nil {
				t.Fatal(err)
			}
			r, err := q.RecordByID(ctx, store.ProviderKind, prov.ID)
			if err != nil || r.Name != "ollama" || r.Secrets["api_key"] != "sk-second" || r.CreatedBy != owner.ID ||
				string(r.Fields["base_url"]) != `"http://127.0.0.1:11435/v1"` {
				t.Fatalf("the provider's record: %+v %v", r, err)
			}
			r, err = q.RecordByID(ctx, store.ModelKind, m.ID)
			if err != nil || r.Name != "Llama 3" || string(r.Fields["provider_model"]) != `"llama3"` || string(r.Fields["is_default"]) != "true" ||
				string(r.Fields["token_delay_ms"]) != "5" || len(r.Links[store.ModelProviderRelation]) != 1 || r.Links[store.ModelProviderRelation][0] != prov.ID {
				t.Fatalf("the model's record: %+v %v", r, err)
			}
			if _, err := q.RecordByID(ctx, store.ModelKind, local); err != nil {
				t.Fatalf("the embedded model's record: %v", err)
			}
			if err := q.AdoptProviders(ctx, owner.ID); err != nil {
				t.Fatalf("adopting again: %v", err)
			}

			if err := q.DeleteProvider(ctx, prov.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := q.ModelByID(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("model of a deleted provider: %v", err)
			}
			if _, err := q.DefaultModel(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("no default is left after deleting it: %v", err)
			}
		})
	}
}

// TestProvidersAdoptedAtStart: a provider stored without a record (as a database older than
// the provider kind keeps it) gets its record, its API key resealed among the record's
// secrets, when the store next opens.
func TestProvidersAdoptedAtStart(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			cfg := d.Config(t)
			s, err := store.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			owner, err := s.Q().CreateProfile(ctx, "owner", "admin")
			if err != nil {
				t.Fatal(err)
			}
			p := store.Provider{ID: store.NewID(), Name: "older", Kind: store.ProviderOpenAI, BaseURL: "http://127.0.0.1:9/v1",
				APIKey: "sk-older", CreatedAt: store.Now(), UpdatedAt: store.Now()}
			if err := s.Q().SaveProvider(ctx, p); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Q().RecordByID(ctx, store.ProviderKind, p.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a record before the start: %v", err)
			}
			s.Close()
			if s, err = store.Open(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r, err := s.Q().RecordByID(ctx, store.ProviderKind, p.ID)
			if err != nil || r.Secrets["api_key"] != "sk-older" || r.CreatedBy != owner.ID || r.Name != "older" {
				t.Fatalf("the record after the start: %+v %v", r, err)
			}
		})
	}
}

func TestPresenceSearch(t *testing.T) {
	for _, d := range testdb.Dialects(t) {
		t.Run(d.Name, func(t *testing.T) {
			ctx := context.Background()
			q := d.Open(t).Q()
			ada, _ := q.CreateProfile(ctx, "ada", "learner")
			bob, _ := q.CreateProfile(ctx, "bob", "learner")
			sales, _ := q.EnsureDepartment(ctx, "sales", ada.ID)
			_ = q.AddProfileDepartment(ctx, ada.ID, sales.ID)
			at := store.Now().Add(-time.Minute)
			add := func(p uuid.UUID, state string, n int) {
				at = at.Add(time.Second)
				if err := q.InsertActivity(ctx, store.Activity{ID: store.NewID(), ProfileID: p, State: state, Sockets: n, CreatedAt: at}); err != nil {
					t.Fatal(err)
				}
			}
			add(ada.ID, store.Active, 1)
			add(bob.ID, store.Active, 2)
			add(ada.ID, store.Inactive, 0)
			ps, total, err := q.SearchPresence(ctx, store.PresenceFilter{}, 10, 0)
			if err != nil || total != 2 || ps[0].ProfileName != "ada" || ps[0].State != store.Inactive || ps[1].Sockets != 2 {
				t.Fatalf("presence: %+v %d %v", ps, total, err)
			}
			if _, total, _ := q.SearchPresence(ctx, store.PresenceFilter{State: store.Active}, 10, 0); total != 1 {
				t.Fatalf("active: %d", total)
			}
			if ps, _, _ := q.SearchPresence(ctx, store.PresenceFilter{DepartmentIDs: []uuid.UUID{sales.ID}}, 10, 0); len(ps) != 1 || ps[0].ProfileName != "ada" {
				t.Fatalf("in sales: %+v", ps)
			}
			if as, _ := q.ProfileActivity(ctx, ada.ID, 10); len(as) != 2 || as[0].State != store.Inactive {
				t.Fatalf("ada's history: %+v", as)
			}
		})
	}
}
