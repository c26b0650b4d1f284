package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/store"
)

// A mirror keeps a table outside the family in step with a kind's records: the tables the
// rest of glow reads (departments, which everything belongs to; providers and models, which
// the runs generate with). Both methods run in the transaction that writes the record,
// before it does, and check what they need first: a refused statement would end the
// transaction on PostgreSQL, which still has the item's result to give.
type mirror interface {
	// save writes the row of a record being created, changed, copied or accepted; the
	// field errors fail the item.
	save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error)
	// remove drops the row of a record being deleted; a reason refuses the deletion.
	remove(ctx context.Context, q store.Q, r store.Record) (refused string, err error)
}

// save mirrors a record of k, when k has a mirror.
func (k *kind) save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error) {
	if k.Mirror == nil {
		return nil, nil
	}
	return k.Mirror.save(ctx, q, r)
}

// departments: the departments table follows the department's records.
type departments struct{}

func (departments) save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error) {
	err := q.SaveDepartment(ctx, r.ID, r.Name, r.CreatedAt)
	if errors.Is(err, store.ErrDuplicate) {
		return fieldError("name", "another department has this name"), nil
	}
	return nil, err
}

func (departments) remove(ctx context.Context, q store.Q, r store.Record) (string, error) {
	switch n, err := q.DepartmentMembers(ctx, r.ID); {
	case err != nil:
		return "", err
	case n > 0:
		return fmt.Sprintf("the department has %d members: move them first", n), nil
	}
	return "", q.DeleteDepartment(ctx, r.ID)
}

// providers: the providers table follows the provider's records; the API key is the
// record's secret api_key.
type providers struct{}

func (providers) save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error) {
	return nil, q.SaveProvider(ctx, store.Provider{ID: r.ID, Name: r.Name, Kind: fieldValue[string](r, "kind"),
		BaseURL: strings.TrimSpace(fieldValue[string](r, "base_url")), APIKey: r.Secrets["api_key"],
		CreatedBy: &r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: store.Now()})
}

func (providers) remove(ctx context.Context, q store.Q, r store.Record) (string, error) {
	if def, err := q.DefaultModel(ctx); err == nil && def.ProviderID == r.ID {
		return "the provider serves the default model: make another model the default first", nil
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	switch n, err := q.ProviderModels(ctx, r.ID); {
	case err != nil:
		return "", err
	case n > 0:
		return fmt.Sprintf("the provider has %d models: delete them first", n), nil
	}
	return "", q.DeleteProvider(ctx, r.ID)
}

// checkProvider requires an http(s) base URL of an OpenAI-compatible provider.
func checkProvider(r store.Record) []gen.FieldError {
	if fieldValue[string](r, "kind") != store.ProviderOpenAI {
		return nil
	}
	u, err := url.Parse(strings.TrimSpace(fieldValue[string](r, "base_url")))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldError("base_url", "an openai provider needs an http(s) base URL, such as https://api.openai.com/v1")
	}
	return nil
}

// models: the models table follows the model's records. One model is the default: a model
// made the default takes it from the other (whose record says so too), and the default is
// only ever passed on, never unset.
type models struct{}

func (models) save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error) {
	providerID := r.Links[store.ModelProviderRelation][0] // a relation of One: set has made sure of it
	if _, err := q.ProviderByID(ctx, providerID); errors.Is(err, store.ErrNotFound) {
		return fieldError("provider_ids", fmt.Sprintf("provider %s does not exist", providerID)), nil
	} else if err != nil {
		return nil, err
	}
	isDefault := fieldValue[bool](r, "is_default")
	def, err := q.DefaultModel(ctx)
	switch {
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	case err == nil && def.ID == r.ID && !isDefault:
		return fieldError("is_default", "this model is the default: make another model the default instead"), nil
	case err == nil && def.ID != r.ID && isDefault:
		if err := unsetDefault(ctx, q, def.ID); err != nil {
			return nil, err
		}
	}
	name := strings.TrimSpace(fieldValue[string](r, "provider_model"))
	if name == "" {
		name = r.Name
	}
	return nil, q.SaveModel(ctx, store.Model{ID: r.ID, ProviderID: providerID, Name: name, Label: r.Name, IsDefault: isDefault,
		TokenDelayMS: fieldValue[*int](r, "token_delay_ms"), CreatedBy: &r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: store.Now()})
}

// unsetDefault says in the record of the model id that it is no longer the default.
func unsetDefault(ctx context.Context, q store.Q, id uuid.UUID) error {
	r, err := q.RecordByID(ctx, store.ModelKind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	r.Fields["is_default"] = []byte("false")
	return q.UpdateRecord(ctx, r)
}

func (models) remove(ctx context.Context, q store.Q, r store.Record) (string, error) {
	if def, err := q.DefaultModel(ctx); err == nil && def.ID == r.ID {
		return "this model is the default: make another model the default first", nil
	}
	return "", q.DeleteModel(ctx, r.ID)
}

// personas: the personas table, which attempts and chats read, follows the persona's
// records.
type personas struct{}

func (personas) save(ctx context.Context, q store.Q, r store.Record) ([]gen.FieldError, error) {
	return nil, q.SavePersona(ctx, store.Persona{ID: r.ID, Name: r.Name, Description: r.Description,
		Instructions: fieldValue[string](r, "instructions"), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt,
		UpdatedAt: store.Now(), DepartmentIDs: r.Departments()})
}

func (personas) remove(ctx context.Context, q store.Q, r store.Record) (string, error) {
	return "", q.DeletePersona(ctx, r.ID)
}
