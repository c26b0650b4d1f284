package handlers

import (
	"reflect"
	"strings"

	"github.com/google/uuid"
)

// body reads a generated request struct by its JSON field names, as the family's one
// implementation reads the requests of every kind (family.go). A field is present when the
// request carried it: a pointer, slice or map that is not nil (so an empty list given to
// clear a relation is present), or any other value.
type body struct {
	fields map[string]reflect.Value
}

// bodyOf reads v, a struct or a pointer to one (a nil pointer reads as no fields).
func bodyOf(v any) body {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return body{}
		}
		rv = rv.Elem()
	}
	b := body{fields: map[string]reflect.Value{}}
	if rv.Kind() != reflect.Struct {
		return b
	}
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			b.fields[name] = rv.Field(i)
		}
	}
	return b
}

func (b body) has(name string) bool {
	v, ok := b.fields[name]
	if !ok {
		return false
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return !v.IsNil()
	}
	return true
}

// value is a present field's value, pointers followed; nil when absent.
func (b body) value(name string) any {
	if !b.has(name) {
		return nil
	}
	v := b.fields[name]
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	return v.Interface()
}

func (b body) str(name string) string {
	if !b.has(name) {
		return ""
	}
	v := b.fields[name]
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	return v.String() // also a string enum
}

func (b body) strp(name string) *string {
	if !b.has(name) {
		return nil
	}
	s := b.str(name)
	return &s
}

func (b body) int(name string) int {
	if !b.has(name) {
		return 0
	}
	v := b.fields[name]
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	return int(v.Int())
}

func (b body) bool(name string) bool {
	v, _ := b.value(name).(bool)
	return v
}

func (b body) id(name string) *uuid.UUID {
	if v, ok := b.value(name).(uuid.UUID); ok {
		return &v
	}
	return nil
}

// ids is a present list of ids (empty but not nil when given empty), or nil.
func (b body) ids(name string) []uuid.UUID {
	v, _ := b.value(name).([]uuid.UUID)
	return v
}

// sub reads a present object field.
func (b body) sub(name string) body {
	if !b.has(name) {
		return body{}
	}
	return bodyOf(b.fields[name].Interface())
}

// items reads a present list of objects.
func (b body) items(name string) []body {
	if !b.has(name) {
		return nil
	}
	v := b.fields[name]
	out := make([]body, v.Len())
	for i := range out {
		out[i] = bodyOf(v.Index(i).Addr().Interface())
	}
	return out
}

// present is every present field, by name, for storing what a request said as it said it.
func (b body) present() map[string]any {
	out := map[string]any{}
	for name := range b.fields {
		if b.has(name) {
			out[name] = b.value(name)
		}
	}
	return out
}
