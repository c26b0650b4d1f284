package dispatch

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/problem"
)

// schemaPrefix is where component schemas live in the spec, and in huma's registry.
const schemaPrefix = "#/components/schemas/"

// Contract is openapi.yaml loaded for use at run time: its schemas in a huma registry, which
// validates request bodies from both transports the same way.
type Contract struct {
	Doc      *openapi3.T
	Registry huma.Registry
	ops      map[string]opSchemas
}

type opSchemas struct {
	request, response *huma.Schema
	defaults          map[string]any // the request schema's top-level property defaults
	// What events must not show of a request or response (nil: nothing).
	redactRequest, redactResponse *redaction
}

// NewContract loads a spec and checks that it describes exactly the generated operations.
func NewContract(spec []byte) (*Contract, error) {
	// Property names are matched exactly: "Name" is not "name".
	huma.ValidateStrictCasing = true

	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid spec: %w", err)
	}
	reg := huma.NewMapRegistry(schemaPrefix, huma.DefaultSchemaNamer)
	names := make([]string, 0, len(doc.Components.Schemas))
	for name := range doc.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := convertSchema(doc.Components.Schemas[name].Value)
		s.PrecomputeMessages()
		reg.Map()[name] = s
	}

	c := &Contract{Doc: doc, Registry: reg, ops: map[string]opSchemas{}}
	for _, op := range gen.Operations {
		item := doc.Paths.Find(op.Path)
		if item == nil || item.Post == nil || item.Post.OperationID != op.ID {
			return nil, fmt.Errorf("spec has no POST %s with operationId %s: run make generate", op.Path, op.ID)
		}
		req := reg.Map()[op.RequestSchema]
		if req == nil || reg.Map()[op.ResponseSchema] == nil {
			return nil, fmt.Errorf("spec lacks schema %s or %s: run make generate", op.RequestSchema, op.ResponseSchema)
		}
		defaults := map[string]any{}
		for prop, s := range req.Properties {
			if s.Default != nil {
				defaults[prop] = s.Default
			}
		}
		c.ops[op.ID] = opSchemas{
			request:        &huma.Schema{Ref: schemaPrefix + op.RequestSchema},
			response:       &huma.Schema{Ref: schemaPrefix + op.ResponseSchema},
			defaults:       defaults,
			redactRequest:  redactionOf(reg, req, map[*huma.Schema]bool{}),
			redactResponse: redactionOf(reg, reg.Map()[op.ResponseSchema], map[*huma.Schema]bool{}),
		}
	}
	return c, nil
}

// Version is the spec's info.version.
func (c *Contract) Version() string { return c.Doc.Info.Version }

// ValidateRequest checks a decoded request body against the operation's request schema.
func (c *Contract) ValidateRequest(opID string, body any) []problem.Detail {
	return c.validate(c.ops[opID].request, huma.ModeWriteToServer, body)
}

// ValidateResponse checks a decoded response body against the operation's 200 schema.
func (c *Contract) ValidateResponse(opID string, body any) []problem.Detail {
	return c.validate(c.ops[opID].response, huma.ModeReadFromServer, body)
}

// ValidateSchema checks a decoded value against a named component schema.
func (c *Contract) ValidateSchema(name string, v any) []problem.Detail {
	return c.validate(&huma.Schema{Ref: schemaPrefix + name}, huma.ModeReadFromServer, v)
}

// MaxErrors bounds the validation errors reported for one request; the problem document
// says when more were found.
const MaxErrors = 50

func (c *Contract) validate(s *huma.Schema, mode huma.ValidateMode, v any) []problem.Detail {
	res := &huma.ValidateResult{}
	huma.Validate(c.Registry, s, huma.NewPathBuffer([]byte("body"), 0), mode, v, res)
	if len(res.Errors) == 0 {
		// Unique items are checked here rather than by huma, which panics on an array of
		// objects or arrays; only once the items have the types the schema says.
		checkUnique(c.Registry, s, huma.NewPathBuffer([]byte("body"), 0), v, res)
	}
	if len(res.Errors) == 0 {
		return nil
	}
	out := make([]problem.Detail, 0, min(len(res.Errors), MaxErrors+1))
	for _, e := range res.Errors {
		// Never e.Error(): it prints the offending value, which for an unexpected property
		// is the whole object — once per property, quadratic in the body.
		if ed, ok := e.(*huma.ErrorDetail); ok {
			out = append(out, problem.Detail{Message: ed.Message, Location: ed.Location, Value: scalar(ed.Value)})
		} else {
			out = append(out, problem.Detail{Message: "invalid"})
		}
	}
	// huma walks unexpected properties in map order: sort for a stable answer.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Location != out[j].Location {
			return out[i].Location < out[j].Location
		}
		return out[i].Message < out[j].Message
	})
	if len(out) > MaxErrors {
		more := len(out) - MaxErrors
		out = append(out[:MaxErrors], problem.Detail{Location: "body",
			Message: fmt.Sprintf("%d more errors not shown (at most %d are reported)", more, MaxErrors)})
	}
	return out
}

// scalar keeps an offending value when it is small enough to echo: objects and arrays (often
// the whole request, for a missing property) are left out.
func scalar(v any) any {
	switch v.(type) {
	case string, float64, bool, int, int64:
		return v
	}
	return nil
}

// RequestDefaults returns the defaults the spec declares for the top-level properties of the
// operation's request.
func (c *Contract) RequestDefaults(opID string) map[string]any { return c.ops[opID].defaults }

// convertSchema turns a kin-openapi schema into huma's form. References stay references,
// resolved through the registry.
func convertSchema(s *openapi3.Schema) *huma.Schema {
	h := &huma.Schema{
		Title:         s.Title,
		Description:   s.Description,
		Format:        s.Format,
		Enum:          s.Enum,
		Default:       s.Default,
		Nullable:      s.Nullable,
		Pattern:       s.Pattern,
		Required:      s.Required,
		ReadOnly:      s.ReadOnly,
		WriteOnly:     s.WriteOnly,
		Deprecated:    s.Deprecated,
		Minimum:       s.Min,
		Maximum:       s.Max,
		MultipleOf:    s.MultipleOf,
		MinLength:     nonZero(s.MinLength),
		MaxLength:     toInt(s.MaxLength),
		MinItems:      nonZero(s.MinItems),
		MaxItems:      toInt(s.MaxItems),
		MinProperties: nonZero(s.MinProps),
		MaxProperties: toInt(s.MaxProps),
		Items:         convertRef(s.Items),
		Not:           convertRef(s.Not),
	}
	if s.UniqueItems {
		h.Extensions = map[string]any{uniqueItemsKey: true} // checked by checkUnique
	}
	if s.Type != nil {
		for _, t := range s.Type.Slice() {
			if t == openapi3.TypeNull {
				h.Nullable = true
			} else {
				h.Type = t
			}
		}
	}
	if s.ExclusiveMin.IsTrue() {
		h.ExclusiveMinimum, h.Minimum = s.Min, nil
	} else if s.ExclusiveMin.Value != nil {
		h.ExclusiveMinimum = s.ExclusiveMin.Value
	}
	if s.ExclusiveMax.IsTrue() {
		h.ExclusiveMaximum, h.Maximum = s.Max, nil
	} else if s.ExclusiveMax.Value != nil {
		h.ExclusiveMaximum = s.ExclusiveMax.Value
	}
	if len(s.Properties) > 0 {
		h.Properties = make(map[string]*huma.Schema, len(s.Properties))
		for name, p := range s.Properties {
			h.Properties[name] = convertRef(p)
		}
	}
	if ap := s.AdditionalProperties; ap.Has != nil && !*ap.Has {
		h.AdditionalProperties = false
	} else if ap.Schema != nil {
		h.AdditionalProperties = convertRef(ap.Schema)
	}
	for _, sub := range s.OneOf {
		h.OneOf = append(h.OneOf, convertRef(sub))
	}
	for _, sub := range s.AnyOf {
		h.AnyOf = append(h.AnyOf, convertRef(sub))
	}
	for _, sub := range s.AllOf {
		h.AllOf = append(h.AllOf, convertRef(sub))
	}
	return h
}

func convertRef(r *openapi3.SchemaRef) *huma.Schema {
	switch {
	case r == nil:
		return nil
	case strings.HasPrefix(r.Ref, schemaPrefix):
		return &huma.Schema{Ref: r.Ref}
	default:
		return convertSchema(r.Value)
	}
}

func nonZero(n uint64) *int {
	if n == 0 {
		return nil
	}
	i := int(n)
	return &i
}

func toInt(n *uint64) *int {
	if n == nil {
		return nil
	}
	i := int(*n)
	return &i
}
