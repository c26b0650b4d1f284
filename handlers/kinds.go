package handlers

import (
	"slices"
	"strings"

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
	// Relations link a record to other records, besides its departments (which every kind
	// has): each is a list of ids in requests and responses, a search facet and a section of
	// get's options.
	Relations []relation
	// SharedReads: every caller allowed the operation reads every record, whatever its
	// departments (tools). Changes still need the departments to overlap.
	SharedReads bool
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
}

var departmentsRelation = relation{Name: store.DepartmentsRelation, Key: "department_ids", Facet: "department",
	Source: store.Source{Table: "departments", Label: "name"}}

// familyKind returns the source of the records of a kind of the family, to link to.
func familyKind(name string) store.Source {
	return store.Source{Table: "artifacts", Label: "name", Kind: name, Soft: true}
}

// kinds are the artifacts of the family, by name.
var kinds = map[string]*kind{
	"tool": {
		Name: "tool", Plural: "tools", Title: "Tool", SharedReads: true,
		Fields: []kindField{{"permissions", []any{}}, {"argument_schema", map[string]any{}}},
	},
	"agent": {
		Name: "agent", Plural: "agents", Title: "Agent",
		Fields: []kindField{{"instructions", ""}, {"temperature", 0.7}, {"reasoning_level", "medium"}},
		Relations: []relation{
			{Name: "models", Key: "model_ids", Facet: "model", Source: store.Source{Table: "models", Label: "label", Soft: true}},
			{Name: "tools", Key: "tool_ids", Facet: "tool", Source: familyKind("tool")},
		},
	},
}

// relations are all of a kind's relations: its own, then departments.
func (k *kind) relations() []relation {
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
	Relations    []FamilyRelation // besides departments
}

// FamilyRelation is a relation of a FamilyKind: its key in requests, its facet, and the kind
// of the family its targets are (empty when they live elsewhere, such as models).
type FamilyRelation struct {
	Name, Key, Facet, Kind string
}

// FamilyKinds lists the kinds of the family, by name.
func FamilyKinds() []FamilyKind {
	var out []FamilyKind
	for _, k := range kinds {
		fk := FamilyKind{Name: k.Name, Plural: k.Plural, SharedReads: k.SharedReads}
		for _, r := range k.Relations {
			fk.Relations = append(fk.Relations, FamilyRelation{Name: r.Name, Key: r.Key, Facet: r.Facet, Kind: r.Source.Kind})
		}
		out = append(out, fk)
	}
	slices.SortFunc(out, func(a, b FamilyKind) int { return strings.Compare(a.Name, b.Name) })
	return out
}
