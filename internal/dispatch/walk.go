package dispatch

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/validation"
)

// This file walks decoded bodies along their schemas, for what huma's validation does not do
// safely (unique items) and for what events must not show (secrets, binary content).

// uniqueItemsKey marks, in a converted schema's extensions, an array whose items must differ.
const uniqueItemsKey = "x-glow-unique-items"

// resolve follows a schema's reference.
func resolve(reg huma.Registry, s *huma.Schema) *huma.Schema {
	for s != nil && s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	return s
}

// checkUnique reports the arrays of v whose schema asks for unique items and which repeat one.
// Items are compared by their JSON text, so objects and arrays compare too.
func checkUnique(reg huma.Registry, s *huma.Schema, path *huma.PathBuffer, v any, res *huma.ValidateResult) {
	s = resolve(reg, s)
	if s == nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for name, prop := range s.Properties {
			if item, ok := v[name]; ok {
				path.Push(name)
				checkUnique(reg, prop, path, item, res)
				path.Pop()
			}
		}
	case []any:
		if s.Extensions[uniqueItemsKey] == true {
			seen := make(map[string]bool, len(v))
			for _, item := range v {
				key, _ := json.Marshal(item)
				if seen[string(key)] {
					res.Add(path, v, validation.MsgExpectedArrayItemsUnique)
					break
				}
				seen[string(key)] = true
			}
		}
		for i, item := range v {
			path.PushIndex(i)
			checkUnique(reg, s.Items, path, item, res)
			path.Pop()
		}
	}
}

// redaction says what of a value events must not show: a secret (writeOnly, or format
// password) is replaced by "[redacted]"; binary content (format byte) by a reference
// {file_id, size, sha256}; within objects and arrays, the properties and items say, and
// for a map (additionalProperties) its values.
type redaction struct {
	secret, binary bool
	props          map[string]*redaction
	values         *redaction // the properties props does not name
	items          *redaction
}

// redactionOf builds the redaction of a schema, or nil when it shows everything.
func redactionOf(reg huma.Registry, s *huma.Schema, seen map[*huma.Schema]bool) *redaction {
	s = resolve(reg, s)
	if s == nil || seen[s] {
		return nil
	}
	switch {
	case s.WriteOnly || s.Format == "password":
		return &redaction{secret: true}
	case s.Format == "byte":
		return &redaction{binary: true}
	}
	seen[s] = true
	defer delete(seen, s)
	r := &redaction{items: redactionOf(reg, s.Items, seen)}
	if values, ok := s.AdditionalProperties.(*huma.Schema); ok {
		r.values = redactionOf(reg, values, seen)
	}
	for name, prop := range s.Properties {
		if pr := redactionOf(reg, prop, seen); pr != nil || r.values != nil {
			// With values redacted, every declared property is listed, so that it is
			// not taken for one of the map's values.
			if r.props == nil {
				r.props = map[string]*redaction{}
			}
			r.props[name] = pr
		}
	}
	if r.items == nil && r.props == nil && r.values == nil {
		return nil
	}
	return r
}

// Redacted is the text the value of a secret field is replaced with.
const Redacted = "[redacted]"

// apply returns v with what r hides replaced; v itself is not changed.
func (r *redaction) apply(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if r.props == nil && r.values == nil {
			return v
		}
		out := make(map[string]any, len(v))
		for k, item := range v {
			pr, named := r.props[k]
			if !named {
				pr = r.values
			}
			switch {
			case pr == nil:
				out[k] = item
			case pr.secret:
				out[k] = Redacted
			case pr.binary:
				out[k] = reference(v["file_id"], item)
			default:
				out[k] = pr.apply(item)
			}
		}
		return out
	case []any:
		if r.items == nil {
			return v
		}
		out := make([]any, len(v))
		for i, item := range v {
			switch {
			case r.items.secret:
				out[i] = Redacted
			case r.items.binary:
				out[i] = reference(nil, item)
			default:
				out[i] = r.items.apply(item)
			}
		}
		return out
	}
	return v
}

// reference stands for base64 content in events: its file (when the object names one), its
// size and its SHA-256.
func reference(fileID, content any) map[string]any {
	text, _ := content.(string)
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		raw = []byte(text)
	}
	sum := sha256.Sum256(raw)
	ref := map[string]any{"size": len(raw), "sha256": hex.EncodeToString(sum[:])}
	if fileID != nil {
		ref["file_id"] = fileID
	}
	return ref
}
