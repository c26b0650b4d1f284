package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Provider kinds.
const (
	ProviderLocal  = "local"  // the embedded model
	ProviderOpenAI = "openai" // any OpenAI-compatible server
)

// Provider is where text generation happens.
type Provider struct {
	ID        uuid.UUID  `db:"id"`
	Name      string     `db:"name"`
	Kind      string     `db:"kind"`
	BaseURL   string     `db:"base_url"`
	APIKey    string     `db:"api_key"` // in plain text here, sealed in the database
	CreatedBy *uuid.UUID `db:"created_by"`
	CreatedAt time.Time  `db:"created_at"`
	UpdatedAt time.Time  `db:"updated_at"`
}

// Model is a model of a provider; the default model serves generations that name none.
type Model struct {
	ID           uuid.UUID  `db:"id"`
	ProviderID   uuid.UUID  `db:"provider_id"`
	Name         string     `db:"name"` // the provider's name for it
	Label        string     `db:"label"`
	IsDefault    bool       `db:"is_default"`
	TokenDelayMS *int       `db:"token_delay_ms"` // local models: the pace of the stream
	CreatedBy    *uuid.UUID `db:"created_by"`
	CreatedAt    time.Time  `db:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at"`
}

const providerColumns = `id, name, kind, base_url, api_key, created_by, created_at, updated_at`

// The family's kinds of the providers' and the models' records. Each provider and model
// has a record of its kind with its id; the family's operations keep these tables, which
// the runs read, in step with them (SaveProvider, SaveModel, …).
const (
	ProviderKind = "provider"
	ModelKind    = "model"
)

// SaveProvider creates the provider p.ID or writes its fields.
func (q Q) SaveProvider(ctx context.Context, p Provider) error {
	_, err := q.exec(ctx, `INSERT INTO providers (id, name, kind, base_url, api_key, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, base_url = excluded.base_url,
			api_key = excluded.api_key, updated_at = excluded.updated_at`,
		p.ID, p.Name, p.Kind, p.BaseURL, q.sealKey(p), p.CreatedBy, p.CreatedAt, p.UpdatedAt)
	return err
}

// ProviderByID finds a provider that is not deleted.
func (q Q) ProviderByID(ctx context.Context, id uuid.UUID) (Provider, error) {
	var p Provider
	if err := q.get(ctx, &p, `SELECT `+providerColumns+` FROM providers WHERE id = ? AND deleted_at IS NULL`, id); err != nil || p.APIKey == "" {
		return p, err
	}
	var err error
	p.APIKey, err = q.box.open(p.APIKey, providerKeyPlace(p.ID.String()))
	return p, err
}

// sealKey is the provider's API key as the database keeps it.
func (q Q) sealKey(p Provider) string {
	if p.APIKey == "" {
		return ""
	}
	return q.box.seal(p.APIKey, providerKeyPlace(p.ID.String()))
}

// DeleteProvider archives a provider and its models.
func (q Q) DeleteProvider(ctx context.Context, id uuid.UUID) error {
	now := Now()
	n, err := q.exec(ctx, `UPDATE providers SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, now, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	_, err = q.exec(ctx, `UPDATE models SET deleted_at = ?, is_default = ? WHERE provider_id = ? AND deleted_at IS NULL`, now, false, id)
	return err
}

// ProviderModels counts the models of a provider.
func (q Q) ProviderModels(ctx context.Context, id uuid.UUID) (int, error) {
	var n int
	err := q.get(ctx, &n, `SELECT COUNT(*) FROM models WHERE provider_id = ? AND deleted_at IS NULL`, id)
	return n, err
}

const modelColumns = `id, provider_id, name, label, is_default, token_delay_ms, created_by, created_at, updated_at`

// SaveModel creates the model m.ID or writes its fields. A default model takes the default
// from the others.
func (q Q) SaveModel(ctx context.Context, m Model) error {
	if m.IsDefault {
		if _, err := q.exec(ctx, `UPDATE models SET is_default = ? WHERE is_default = ? AND id <> ?`, false, true, m.ID); err != nil {
			return err
		}
	}
	_, err := q.exec(ctx, `INSERT INTO models (id, provider_id, name, label, is_default, token_delay_ms, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET provider_id = excluded.provider_id, name = excluded.name, label = excluded.label,
			is_default = excluded.is_default, token_delay_ms = excluded.token_delay_ms, updated_at = excluded.updated_at`,
		m.ID, m.ProviderID, m.Name, m.Label, m.IsDefault, m.TokenDelayMS, m.CreatedBy, m.CreatedAt, m.UpdatedAt)
	return err
}

// ModelByID finds a model that is not deleted.
func (q Q) ModelByID(ctx context.Context, id uuid.UUID) (Model, error) {
	var m Model
	err := q.get(ctx, &m, `SELECT `+modelColumns+` FROM models WHERE id = ? AND deleted_at IS NULL`, id)
	return m, err
}

// DefaultModel returns the model that serves generations naming none.
func (q Q) DefaultModel(ctx context.Context) (Model, error) {
	var m Model
	err := q.get(ctx, &m, `SELECT `+modelColumns+` FROM models WHERE is_default = ? AND deleted_at IS NULL LIMIT 1`, true)
	return m, err
}

// DeleteModel archives a model.
func (q Q) DeleteModel(ctx context.Context, id uuid.UUID) error {
	n, err := q.exec(ctx, `UPDATE models SET deleted_at = ?, is_default = ? WHERE id = ? AND deleted_at IS NULL`, Now(), false, id)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// ModelProviderRelation is the relation of a model's record to its provider's.
const ModelProviderRelation = "providers"

// The embedded provider and its model, which every database starts with (migration 00002).
var (
	LocalProviderID = uuid.MustParse("00000000-0000-7000-8000-000000000001")
	LocalModelID    = uuid.MustParse("00000000-0000-7000-8000-000000000002")
)

// AdoptProviders gives each provider and model that has no record of the family its own,
// made by the profile by: the embedded model's, which exist before any profile does, and
// those of a database older than these kinds. It runs as the store opens and as a profile
// is created.
func (q Q) AdoptProviders(ctx context.Context, by uuid.UUID) error {
	var ids []uuid.UUID
	if err := q.sel(ctx, &ids, `SELECT p.id FROM providers p
		WHERE p.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = p.id) ORDER BY p.created_at, p.id`); err != nil {
		return err
	}
	for _, id := range ids {
		p, err := q.ProviderByID(ctx, id)
		if err != nil {
			return err
		}
		r := Record{ID: p.ID, Kind: ProviderKind, Name: p.Name, CreatedBy: by, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
			Fields: map[string]json.RawMessage{"kind": quoted(p.Kind), "base_url": quoted(p.BaseURL)}, Secrets: map[string]string{}}
		if p.APIKey != "" {
			r.Secrets["api_key"] = p.APIKey
		}
		if err := q.InsertRecord(ctx, r); err != nil {
			return err
		}
	}
	var ms []Model
	if err := q.sel(ctx, &ms, `SELECT `+modelColumns+` FROM models m
		WHERE m.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.id = m.id) ORDER BY m.created_at, m.id`); err != nil {
		return err
	}
	for _, m := range ms {
		delay := json.RawMessage("null")
		if m.TokenDelayMS != nil {
			delay = json.RawMessage(strconv.Itoa(*m.TokenDelayMS))
		}
		err := q.InsertRecord(ctx, Record{ID: m.ID, Kind: ModelKind, Name: m.Label, CreatedBy: by, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
			Fields: map[string]json.RawMessage{"provider_model": quoted(m.Name), "is_default": json.RawMessage(strconv.FormatBool(m.IsDefault)),
				"token_delay_ms": delay},
			Links: map[string][]uuid.UUID{ModelProviderRelation: {m.ProviderID}}})
		if err != nil {
			return err
		}
	}
	return nil
}

// adoptProviders gives the providers and models of a database that has profiles their
// records, made by its first profile.
func (s *Store) adoptProviders(ctx context.Context) error {
	return s.Tx(ctx, func(q Q) error {
		var first uuid.UUID
		switch err := q.get(ctx, &first, `SELECT id FROM profiles ORDER BY created_at, id LIMIT 1`); {
		case errors.Is(err, ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		return q.AdoptProviders(ctx, first)
	})
}

// quoted is s as a JSON string.
func quoted(s string) json.RawMessage {
	raw, _ := json.Marshal(s)
	return raw
}
