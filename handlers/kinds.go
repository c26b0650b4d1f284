package handlers

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/store"
)

// A kind describes one artifact of the standard family (the operations openapi.yaml marks
// x-glow-family): all that family.go, the one implementation of the standard operations,
// needs to serve it. Its requests and responses are its schemas in openapi.yaml, named
// after Name and Plural; docs/ARTIFACTS.md says how to add one.
type kind struct {
	Name   string // the artifact: "agent"; its id fields are "<Name>_id" and "<Name>_ids"
	Plural string // the key of its lists in requests and responses: "agents"
	Title  string // its name in exports and in a run's description: "Agent"
	// Fields are the kind's own fields besides name and description, with the values a new
	// record gets when a create leaves them out. They are stored as given (the request
	// schema has checked them) and exported as JSON when they are not text or numbers.
	Fields []kindField
	// Derived are fields the records derive, which no request sets (a persona's
	// attempt_count, counted as attempts start): get and search rows show them, a new
	// record and a copy get their defaults, and Derive recomputes them at refresh.
	Derived []kindField
	Derive  func(ctx context.Context, q store.Q, f store.RecordFilter) error
	// Uncopied are the fields a copy of a record does not take from it: it gets their
	// defaults (a model's is_default: there is one default).
	Uncopied []string
	// Relations link a record to other records, besides its departments (which every kind
	// has): each is a list of ids in requests and responses, a search facet and a section of
	// get's options.
	Relations []relation
	// SharedReads: every caller allowed the operation reads every record, whatever its
	// departments (tools). Changes still need the departments to overlap.
	SharedReads bool
	// Secrets: the records keep secrets, sealed at rest, written through `secrets`, shown
	// by name only (`secret_names`) and read by `decrypt`.
	Secrets bool
	// Tenancy: the records are the departments themselves. Each is in its own scope (it has
	// no department_ids; its members read it).
	Tenancy bool
	// Mirror, when set, keeps a table outside the family in step with the records.
	Mirror mirror
	// Question is what generate asks when it is given no instructions (a default when
	// empty); the answer becomes the instructions.
	Question string
	// Check, when set, checks a created or changed record as a whole (what the request
	// schema cannot say, such as one field bounding another).
	Check func(r store.Record) []gen.FieldError
}

type kindField struct {
	Name    string
	Default any
}

// relation is a list of links from a record to the targets in Source.
type relation struct {
	Name   string // the links' name, and get's section: "models"
	Key    string // the ids' field in requests and responses: "model_ids"
	Facet  string // the search facet: filter_<Facet>_ids, <Facet>_search, <Facet>_filter
	Source store.Source
	// One: a record links to exactly one target (a model's provider); a create that names
	// none links to Default.
	One     bool
	Default uuid.UUID
}

var departmentsRelation = relation{Name: store.DepartmentsRelation, Key: "department_ids", Facet: "department",
	Source: store.Source{Table: "departments", Label: "name"}}

// familyKind returns the source of the records of a kind of the family, to link to.
func familyKind(name string) store.Source {
	return store.Source{Table: "artifacts", Label: "name", Kind: name, Soft: true}
}

// Sources of relations to records outside the family's table.
var (
	profilesSource = store.Source{Table: "profiles", Label: "name",
		Departments: &store.Membership{Table: "profile_departments", Key: "profile_id"}}
)

// kinds are the artifacts of the family, by name.
var kinds = map[string]*kind{
	"department": {
		Name: "department", Plural: "departments", Title: "Department", Tenancy: true, Mirror: departments{},
		Fields: []kindField{{"code", ""}, {"timezone", "UTC"}},
	},
	"provider": {
		Name: "provider", Plural: "providers", Title: "Provider", Secrets: true, Mirror: providers{},
		Fields: []kindField{{"kind", store.ProviderLocal}, {"base_url", ""}},
		Check:  checkProvider,
	},
	"model": {
		Name: "model", Plural: "models", Title: "Model", Mirror: models{},
		Fields:   []kindField{{"provider_model", ""}, {"is_default", false}, {"token_delay_ms", nil}},
		Uncopied: []string{"is_default"},
		Relations: []relation{{Name: store.ModelProviderRelation, Key: "provider_ids", Facet: "provider", Source: familyKind("provider"),
			One: true, Default: store.LocalProviderID}},
	},
	"persona": {
		Name: "persona", Plural: "personas", Title: "Persona", Mirror: personas{},
		Fields:  []kindField{{"instructions", ""}},
		Derived: []kindField{{"attempt_count", 0}},
		Derive: func(ctx context.Context, q store.Q, f store.RecordFilter) error {
			return q.RecountPersonaAttempts(ctx, f)
		},
		Question: "What kind of persona should I draft? Describe their role, what they want, and their temperament.",
	},
	"tool": {
		Name: "tool", Plural: "tools", Title: "Tool", SharedReads: true,
		Fields: []kindField{{"permissions", []any{}}, {"argument_schema", map[string]any{}}},
	},
	"agent": {
		Name: "agent", Plural: "agents", Title: "Agent",
		Fields: []kindField{{"instructions", ""}, {"temperature", 0.7}, {"reasoning_level", "medium"}},
		Relations: []relation{
			{Name: "models", Key: "model_ids", Facet: "model", Source: familyKind("model")},
			{Name: "tools", Key: "tool_ids", Facet: "tool", Source: familyKind("tool")},
		},
	},
	"field": {
		Name: "field", Plural: "fields", Title: "Field",
		Fields: []kindField{{"type", "text"}, {"options", []any{}}, {"required", false}, {"default_value", ""}},
		Check: func(r store.Record) []gen.FieldError {
			options, value := fieldValue[[]string](r, "options"), fieldValue[string](r, "default_value")
			switch {
			case fieldValue[string](r, "type") == "choice" && len(options) == 0:
				return fieldError("options", "a choice field needs options")
			case fieldValue[string](r, "type") == "choice" && value != "" && !slices.Contains(options, value):
				return fieldError("default_value", "the default value is not one of the options")
			}
			return nil
		},
	},
	"parameter": {
		Name: "parameter", Plural: "parameters", Title: "Parameter",
		Fields:    []kindField{{"values", []any{}}, {"default_value", ""}},
		Relations: []relation{{Name: "fields", Key: "field_ids", Facet: "field", Source: familyKind("field")}},
		Check: func(r store.Record) []gen.FieldError {
			if v := fieldValue[string](r, "default_value"); v != "" && !slices.Contains(fieldValue[[]string](r, "values"), v) {
				return fieldError("default_value", "the default value is not one of the values")
			}
			return nil
		},
	},
	"rubric": {
		Name: "rubric", Plural: "rubrics", Title: "Rubric",
		Fields: []kindField{{"standards", []any{}}, {"total_points", 100}, {"pass_points", 70},
			{"simulation_rubric", true}, {"video_rubric", false}},
		Check: func(r store.Record) []gen.FieldError {
			total := fieldValue[float64](r, "total_points")
			if fieldValue[float64](r, "pass_points") > total {
				return fieldError("pass_points", "more points to pass than the rubric has")
			}
			sum := 0.0
			for _, s := range fieldValue[[]struct{ Points float64 }](r, "standards") {
				sum += s.Points
			}
			if sum > total {
				return fieldError("standards", "the standards' points add up to more than total_points")
			}
			return nil
		},
	},
	"eval": {
		Name: "eval", Plural: "evals", Title: "Eval",
		Fields: []kindField{{"instructions", ""}, {"repetitions", 1}, {"pass_threshold", 0.7}},
		Relations: []relation{
			{Name: "rubrics", Key: "rubric_ids", Facet: "rubric", Source: familyKind("rubric")},
			{Name: "agents", Key: "agent_ids", Facet: "agent", Source: familyKind("agent")},
		},
	},
	"simulation": {
		Name: "simulation", Plural: "simulations", Title: "Simulation",
		Fields: []kindField{{"chats", []any{}}, {"infinite_mode", false}},
		Relations: []relation{
			{Name: "personas", Key: "persona_ids", Facet: "persona", Source: familyKind("persona")},
			{Name: "rubrics", Key: "rubric_ids", Facet: "rubric", Source: familyKind("rubric")},
			{Name: "evals", Key: "eval_ids", Facet: "eval", Source: familyKind("eval")},
		},
	},
	"cohort": {
		Name: "cohort", Plural: "cohorts", Title: "Cohort",
		Fields:    []kindField{{"capacity", 0}},
		Relations: []relation{{Name: "profiles", Key: "profile_ids", Facet: "profile", Source: profilesSource}},
		Check: func(r store.Record) []gen.FieldError {
			if capacity := fieldValue[int](r, "capacity"); capacity > 0 && len(r.Links["profiles"]) > capacity {
				return fieldError("profile_ids", "more members than the cohort's capacity")
			}
			return nil
		},
	},
	"auth": {
		Name: "auth", Plural: "auths", Title: "Sign-in method",
		Fields: []kindField{{"method", "password"}, {"issuer_url", ""}, {"client_id", ""}, {"allowed_domains", []any{}},
			{"default_role", "learner"}},
		Check: func(r store.Record) []gen.FieldError {
			if m := fieldValue[string](r, "method"); (m == "oidc" || m == "saml") && strings.TrimSpace(fieldValue[string](r, "issuer_url")) == "" {
				return fieldError("issuer_url", m+" needs the identity provider's issuer_url")
			}
			return nil
		},
	},
	"setting": {
		Name: "setting", Plural: "settings", Title: "Setting", Secrets: true,
		Fields: []kindField{{"theme", map[string]any{}}, {"thresholds", map[string]any{}}},
		Relations: []relation{
			{Name: "agents", Key: "agent_ids", Facet: "agent", Source: familyKind("agent")},
			{Name: "tools", Key: "tool_ids", Facet: "tool", Source: familyKind("tool")},
		},
		Check: func(r store.Record) []gen.FieldError {
			t := fieldValue[struct {
				Pass *float64 `json:"pass_score"`
				Warn *float64 `json:"warn_score"`
			}](r, "thresholds")
			if t.Pass != nil && t.Warn != nil && *t.Warn > *t.Pass {
				return fieldError("thresholds", "warn_score is above pass_score")
			}
			return nil
		},
	},
}

// question is what generate asks for when it has nothing to go on.
func (k *kind) question() string {
	if k.Question != "" {
		return k.Question
	}
	return "What should the " + strings.ToLower(k.Title) + " be? Describe what it is for."
}

// fieldValue reads a stored field of a record (the zero value when it is absent or of
// another shape: the request schema has checked what is stored).
func fieldValue[T any](r store.Record, name string) T {
	var v T
	_ = json.Unmarshal(r.Fields[name], &v)
	return v
}

func fieldError(field, message string) []gen.FieldError {
	return []gen.FieldError{{Field: field, Message: message}}
}

// relations are all of a kind's relations: its own, then departments (which a department
// has not: it is its own scope).
func (k *kind) relations() []relation {
	if k.Tenancy {
		return k.Relations
	}
	return append(k.Relations[:len(k.Relations):len(k.Relations)], departmentsRelation)
}

// readScope is the part of the records a caller with this scope reads: nil for every
// record, when the kind's reads are shared.
func (k *kind) readScope(s store.Scope) *store.Scope {
	if k.SharedReads {
		return nil
	}
	return &s
}

// FamilyKind is a kind of the family as its requests name it, for what derives its tables
// from the kinds (the tenancy and parity tests, docs/ARTIFACTS.md's numbers).
type FamilyKind struct {
	Name, Plural string
	SharedReads  bool
	Secrets      bool
	Tenancy      bool             // the records are the departments
	Relations    []FamilyRelation // besides departments
}

// FamilyRelation is a relation of a FamilyKind: its key in requests, its facet, the kind of
// the family its targets are (empty when they live elsewhere, such as profiles), and
// whether a record has exactly one target.
type FamilyRelation struct {
	Name, Key, Facet, Kind string
	One                    bool
}

// FamilyKinds lists the kinds of the family, by name.
func FamilyKinds() []FamilyKind {
	var out []FamilyKind
	for _, k := range kinds {
		fk := FamilyKind{Name: k.Name, Plural: k.Plural, SharedReads: k.SharedReads, Secrets: k.Secrets, Tenancy: k.Tenancy}
		for _, r := range k.Relations {
			fk.Relations = append(fk.Relations, FamilyRelation{Name: r.Name, Key: r.Key, Facet: r.Facet, Kind: r.Source.Kind, One: r.One})
		}
		out = append(out, fk)
	}
	slices.SortFunc(out, func(a, b FamilyKind) int { return strings.Compare(a.Name, b.Name) })
	return out
}
