package store

import (
	"context"
	"strings"
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

// InsertProvider stores a provider.
func (q Q) InsertProvider(ctx context.Context, p Provider) error {
	_, err := q.exec(ctx, `INSERT INTO providers (id, name, kind, base_url, api_key, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.ID, p.Name, p.Kind, p.BaseURL, q.sealKey(p), p.CreatedBy, p.CreatedAt, p.UpdatedAt)
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

// UpdateProvider writes a provider's fields.
func (q Q) UpdateProvider(ctx context.Context, p Provider) error {
	n, err := q.exec(ctx, `UPDATE providers SET name = ?, kind = ?, base_url = ?, api_key = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, p.Name, p.Kind, p.BaseURL, q.sealKey(p), p.UpdatedAt, p.ID)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
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

// SearchProviders returns a page of providers by name and their total.
func (q Q) SearchProviders(ctx context.Context, text string, limit, offset int) ([]Provider, int, error) {
	where, args := "deleted_at IS NULL", []any{}
	if text = strings.TrimSpace(text); text != "" {
		where += ` AND lower(name) LIKE ? ESCAPE '\'`
		args = append(args, likePattern(text))
	}
	var ps []Provider
	total, err := q.page(ctx, &ps, providerColumns, "providers", where, "name, id", args, limit, offset)
	for i := range ps {
		if err == nil && ps[i].APIKey != "" {
			ps[i].APIKey, err = q.box.open(ps[i].APIKey, providerKeyPlace(ps[i].ID.String()))
		}
	}
	return ps, total, err
}

const modelColumns = `id, provider_id, name, label, is_default, token_delay_ms, created_by, created_at, updated_at`

// InsertModel stores a model. A default model takes the default from the others.
func (q Q) InsertModel(ctx context.Context, m Model) error {
	if m.IsDefault {
		if _, err := q.exec(ctx, `UPDATE models SET is_default = ? WHERE is_default = ?`, false, true); err != nil {
			return err
		}
	}
	_, err := q.exec(ctx, `INSERT INTO models (id, provider_id, name, label, is_default, token_delay_ms, created_by, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, m.ID, m.ProviderID, m.Name, m.Label, m.IsDefault, m.TokenDelayMS, m.CreatedBy, m.CreatedAt, m.UpdatedAt)
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

// UpdateModel writes a model's fields; making it the default takes the default from others.
func (q Q) UpdateModel(ctx context.Context, m Model) error {
	if m.IsDefault {
		if _, err := q.exec(ctx, `UPDATE models SET is_default = ? WHERE is_default = ? AND id <> ?`, false, true, m.ID); err != nil {
			return err
		}
	}
	n, err := q.exec(ctx, `UPDATE models SET name = ?, label = ?, is_default = ?, token_delay_ms = ?, updated_at = ?
		WHERE id = ? AND deleted_at IS NULL`, m.Name, m.Label, m.IsDefault, m.TokenDelayMS, m.UpdatedAt, m.ID)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// DeleteModel archives a model.
func (q Q) DeleteModel(ctx context.Context, id uuid.UUID) error {
	n, err := q.exec(ctx, `UPDATE models SET deleted_at = ?, is_default = ? WHERE id = ? AND deleted_at IS NULL`, Now(), false, id)
	if err == nil && n == 0 {
		return ErrNotFound
	}
	return err
}

// SearchModels returns a page of models (of one provider, when providerID is not nil) by
// label and their total.
func (q Q) SearchModels(ctx context.Context, providerID *uuid.UUID, text string, limit, offset int) ([]Model, int, error) {
	where, args := "deleted_at IS NULL", []any{}
	if providerID != nil {
		where += " AND provider_id = ?"
		args = append(args, *providerID)
	}
	if text = strings.TrimSpace(text); text != "" {
		where += ` AND (lower(label) LIKE ? ESCAPE '\' OR lower(name) LIKE ? ESCAPE '\')`
		args = append(args, likePattern(text), likePattern(text))
	}
	var ms []Model
	total, err := q.page(ctx, &ms, modelColumns, "models", where, "label, id", args, limit, offset)
	return ms, total, err
}
