package dispatch_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/problem"
)

// TestGeneratedTypesMatchTheSpec reads gen/types.gen.go and checks that every object schema
// of openapi.yaml has a struct with exactly its properties, optional ones (and only those)
// tagged omitempty. It catches a spec edited without make generate.
func TestGeneratedTypesMatchTheSpec(t *testing.T) {
	c, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	structs := generatedStructs(t, "../../gen/types.gen.go")
	checked := 0
	for name, ref := range c.Doc.Components.Schemas {
		s := ref.Value
		if !s.Type.Is(openapi3.TypeObject) || len(s.Properties) == 0 {
			continue
		}
		fields, ok := structs[name]
		if !ok {
			t.Errorf("schema %s has no generated struct", name)
			continue
		}
		want := map[string]bool{} // JSON name → omitempty
		required := map[string]bool{}
		for _, r := range s.Required {
			required[r] = true
		}
		for prop := range s.Properties {
			want[prop] = !required[prop]
		}
		if !reflect.DeepEqual(fields, want) {
			t.Errorf("%s: generated fields %v, spec says %v (run make generate)", name, keys(fields), keys(want))
		}
		checked++
	}
	if checked < 30 {
		t.Fatalf("checked only %d schemas: is the parser reading the right file?", checked)
	}
}

// TestOperationsMatchTheSpec checks the generated table against the spec's paths.
func TestOperationsMatchTheSpec(t *testing.T) {
	c, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	streams := map[string]string{}
	for _, st := range gen.Streams {
		streams[st.Path] = st.ID
	}
	for _, path := range c.Doc.Paths.InMatchingOrder() {
		item := c.Doc.Paths.Find(path)
		if item.Get != nil {
			if streams[path] != item.Get.OperationID {
				t.Errorf("GET %s (%s) is not in the generated streams (run make generate)", path, item.Get.OperationID)
			}
			delete(streams, path)
			continue
		}
		op, ok := gen.OperationByID(item.Post.OperationID)
		if !ok || op.Path != path {
			t.Errorf("POST %s (%s) is not in the generated table (run make generate)", path, item.Post.OperationID)
		}
		n++
	}
	if n != len(gen.Operations) {
		t.Errorf("the spec has %d operations, the generated table %d (run make generate)", n, len(gen.Operations))
	}
	for path := range streams {
		t.Errorf("the generated streams have GET %s, which the spec does not (run make generate)", path)
	}
}

// TestProblemMatchesTheSpec checks that the problem documents glow writes fit the spec's
// Problem schema.
func TestProblemMatchesTheSpec(t *testing.T) {
	c, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	p := problem.Invalid("validation failed", problem.Detail{Message: "expected string", Location: "body.name", Value: 5.0})
	p.Instance = "urn:uuid:00000000-0000-4000-8000-000000000000"
	var v map[string]any
	if err := jsonRoundTrip(p, &v); err != nil {
		t.Fatal(err)
	}
	if errs := c.ValidateSchema("Problem", v); errs != nil {
		t.Fatalf("problem document breaks the spec: %+v", errs)
	}
	for _, field := range []string{"title", "status", "detail", "instance", "errors"} {
		if _, ok := v[field]; !ok {
			t.Errorf("problem document lacks %q: %v", field, v)
		}
	}
	if errs := c.ValidateSchema("Problem", map[string]any{"status": "500"}); errs == nil {
		t.Fatal("the Problem schema accepts a string status: validation is not working")
	}
}

// generatedStructs maps each struct type of a Go file to its fields' JSON names and whether
// they are tagged omitempty.
func generatedStructs(t *testing.T, path string) map[string]map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	aliases := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		if target, ok := ts.Type.(*ast.Ident); ok && ts.Assign.IsValid() {
			aliases[ts.Name.Name] = target.Name // type PersonaGenerateRequest = GenerateRequest
			return false
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		fields := map[string]bool{}
		for _, field := range st.Fields.List {
			if field.Tag == nil {
				continue
			}
			tag := reflect.StructTag(strings.Trim(field.Tag.Value, "`")).Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			fields[name] = strings.Contains(opts, "omitempty")
		}
		out[ts.Name.Name] = fields
		return false
	})
	for alias, target := range aliases {
		if fields, ok := out[target]; ok {
			out[alias] = fields
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var ks []string
	for k, omit := range m {
		if omit {
			k += ",omitempty"
		}
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func jsonRoundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
