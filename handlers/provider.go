package handlers

import (
	"context"
	"net/url"
	"strings"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// checkBaseURL requires an http(s) URL for OpenAI-compatible providers.
func checkBaseURL(kind, base string) error {
	if kind != store.ProviderOpenAI {
		return nil
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return problem.Invalid("validation failed", problem.Detail{Location: "body.base_url",
			Message: "an openai provider needs an http(s) base URL, such as https://api.openai.com/v1", Value: base})
	}
	return nil
}

// ProviderCreate adds a provider.
func (s *Service) ProviderCreate(ctx context.Context, in *gen.ProviderCreateRequest) (*gen.ProviderCreateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSpace(deref(in.BaseUrl))
	if err := checkBaseURL(string(in.Kind), base); err != nil {
		return nil, err
	}
	name, err := notBlank("name", in.Name)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	p := store.Provider{ID: store.NewID(), Name: name, Kind: string(in.Kind), BaseURL: base,
		APIKey: deref(in.ApiKey), CreatedBy: &id.ProfileID, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Q().InsertProvider(ctx, p); err != nil {
		return nil, err
	}
	return &gen.ProviderCreateResponse{Provider: providerOut(p), IdempotencyKey: in.IdempotencyKey}, nil
}

// ProviderGet returns a provider and its models.
func (s *Service) ProviderGet(ctx context.Context, in *gen.ProviderGetRequest) (*gen.ProviderGetResponse, error) {
	q := s.store.Q()
	p, err := q.ProviderByID(ctx, in.ProviderId)
	if err != nil {
		return nil, notFound(err, "provider", in.ProviderId)
	}
	ms, _, err := q.SearchModels(ctx, &p.ID, "", 1000, 0)
	if err != nil {
		return nil, err
	}
	out := &gen.ProviderGetResponse{Provider: providerOut(p), Models: make([]gen.Model, len(ms))}
	for i, m := range ms {
		out.Models[i] = modelOut(m)
	}
	return out, nil
}

// ProviderUpdate changes a provider.
func (s *Service) ProviderUpdate(ctx context.Context, in *gen.ProviderUpdateRequest) (*gen.ProviderUpdateResponse, error) {
	var p store.Provider
	err := s.store.Tx(ctx, func(q store.Q) error {
		var err error
		if p, err = q.ProviderByID(ctx, in.ProviderId); err != nil {
			return notFound(err, "provider", in.ProviderId)
		}
		if in.Name != nil {
			if p.Name, err = notBlank("name", *in.Name); err != nil {
				return err
			}
		}
		if in.BaseUrl != nil {
			p.BaseURL = strings.TrimSpace(*in.BaseUrl)
		}
		if in.ApiKey != nil {
			p.APIKey = *in.ApiKey
		}
		if err := checkBaseURL(p.Kind, p.BaseURL); err != nil {
			return err
		}
		p.UpdatedAt = store.Now()
		return q.UpdateProvider(ctx, p)
	})
	if err != nil {
		return nil, err
	}
	return &gen.ProviderUpdateResponse{Provider: providerOut(p), IdempotencyKey: in.IdempotencyKey}, nil
}

// ProviderDecrypt returns a provider's API key to a caller holding (provider, decrypt).
func (s *Service) ProviderDecrypt(ctx context.Context, in *gen.ProviderDecryptRequest) (*gen.ProviderDecryptResponse, error) {
	p, err := s.store.Q().ProviderByID(ctx, in.ProviderId)
	if err != nil {
		return nil, notFound(err, "provider", in.ProviderId)
	}
	out := &gen.ProviderDecryptResponse{ProviderId: p.ID, HasApiKey: p.APIKey != ""}
	if out.HasApiKey {
		out.ApiKey = &p.APIKey
	}
	return out, nil
}

// ProviderDelete archives a provider and its models. The provider of the default model
// cannot go: make another model the default first.
func (s *Service) ProviderDelete(ctx context.Context, in *gen.ProviderDeleteRequest) (*gen.ProviderDeleteResponse, error) {
	err := s.store.Tx(ctx, func(q store.Q) error {
		if _, err := q.ProviderByID(ctx, in.ProviderId); err != nil {
			return notFound(err, "provider", in.ProviderId)
		}
		if def, err := q.DefaultModel(ctx); err == nil && def.ProviderID == in.ProviderId {
			return problem.Conflict("provider %s serves the default model; make another model the default first", in.ProviderId)
		}
		return q.DeleteProvider(ctx, in.ProviderId)
	})
	if err != nil {
		return nil, err
	}
	return &gen.ProviderDeleteResponse{Success: true, ProviderId: in.ProviderId, IdempotencyKey: in.IdempotencyKey}, nil
}

// ProviderSearch lists providers by name.
func (s *Service) ProviderSearch(ctx context.Context, in *gen.ProviderSearchRequest) (*gen.ProviderSearchResponse, error) {
	ps, total, err := s.store.Q().SearchProviders(ctx, deref(in.Search), deref(in.PageSize), deref(in.PageOffset))
	if err != nil {
		return nil, err
	}
	out := &gen.ProviderSearchResponse{Providers: make([]gen.Provider, len(ps)), TotalCount: total,
		PageSize: deref(in.PageSize), PageOffset: deref(in.PageOffset)}
	for i, p := range ps {
		out.Providers[i] = providerOut(p)
	}
	return out, nil
}

// ModelCreate adds a model to a provider.
func (s *Service) ModelCreate(ctx context.Context, in *gen.ModelCreateRequest) (*gen.ModelCreateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	name, err := notBlank("name", in.Name)
	if err != nil {
		return nil, err
	}
	label := name
	if in.Label != nil {
		if label, err = notBlank("label", *in.Label); err != nil {
			return nil, err
		}
	}
	now := store.Now()
	m := store.Model{ID: store.NewID(), ProviderID: in.ProviderId, Name: name, Label: label, IsDefault: deref(in.IsDefault),
		TokenDelayMS: in.TokenDelayMs, CreatedBy: &id.ProfileID, CreatedAt: now, UpdatedAt: now}
	err = s.store.Tx(ctx, func(q store.Q) error {
		if _, err := q.ProviderByID(ctx, in.ProviderId); err != nil {
			return notFound(err, "provider", in.ProviderId)
		}
		return q.InsertModel(ctx, m)
	})
	if err != nil {
		return nil, err
	}
	return &gen.ModelCreateResponse{Model: modelOut(m), IdempotencyKey: in.IdempotencyKey}, nil
}

// ModelGet returns a model and its provider.
func (s *Service) ModelGet(ctx context.Context, in *gen.ModelGetRequest) (*gen.ModelGetResponse, error) {
	q := s.store.Q()
	m, err := q.ModelByID(ctx, in.ModelId)
	if err != nil {
		return nil, notFound(err, "model", in.ModelId)
	}
	p, err := q.ProviderByID(ctx, m.ProviderID)
	if err != nil {
		return nil, err
	}
	return &gen.ModelGetResponse{Model: modelOut(m), Provider: providerOut(p)}, nil
}

// ModelUpdate changes a model; is_default: true makes it the default.
func (s *Service) ModelUpdate(ctx context.Context, in *gen.ModelUpdateRequest) (*gen.ModelUpdateResponse, error) {
	var m store.Model
	err := s.store.Tx(ctx, func(q store.Q) error {
		var err error
		if m, err = q.ModelByID(ctx, in.ModelId); err != nil {
			return notFound(err, "model", in.ModelId)
		}
		if in.IsDefault != nil && !*in.IsDefault && m.IsDefault {
			return problem.Conflict("model %s is the default; make another model the default instead", m.ID)
		}
		if in.Name != nil {
			if m.Name, err = notBlank("name", *in.Name); err != nil {
				return err
			}
		}
		if in.Label != nil {
			if m.Label, err = notBlank("label", *in.Label); err != nil {
				return err
			}
		}
		if in.IsDefault != nil {
			m.IsDefault = *in.IsDefault
		}
		if in.TokenDelayMs != nil {
			m.TokenDelayMS = in.TokenDelayMs
		}
		m.UpdatedAt = store.Now()
		return q.UpdateModel(ctx, m)
	})
	if err != nil {
		return nil, err
	}
	return &gen.ModelUpdateResponse{Model: modelOut(m), IdempotencyKey: in.IdempotencyKey}, nil
}

// ModelDelete archives a model other than the default.
func (s *Service) ModelDelete(ctx context.Context, in *gen.ModelDeleteRequest) (*gen.ModelDeleteResponse, error) {
	err := s.store.Tx(ctx, func(q store.Q) error {
		m, err := q.ModelByID(ctx, in.ModelId)
		if err != nil {
			return notFound(err, "model", in.ModelId)
		}
		if m.IsDefault {
			return problem.Conflict("model %s is the default; make another model the default first", m.ID)
		}
		return q.DeleteModel(ctx, m.ID)
	})
	if err != nil {
		return nil, err
	}
	return &gen.ModelDeleteResponse{Success: true, ModelId: in.ModelId, IdempotencyKey: in.IdempotencyKey}, nil
}

// ModelSearch lists models by label.
func (s *Service) ModelSearch(ctx context.Context, in *gen.ModelSearchRequest) (*gen.ModelSearchResponse, error) {
	ms, total, err := s.store.Q().SearchModels(ctx, in.ProviderId, deref(in.Search), deref(in.PageSize), deref(in.PageOffset))
	if err != nil {
		return nil, err
	}
	out := &gen.ModelSearchResponse{Models: make([]gen.Model, len(ms)), TotalCount: total,
		PageSize: deref(in.PageSize), PageOffset: deref(in.PageOffset)}
	for i, m := range ms {
		out.Models[i] = modelOut(m)
	}
	return out, nil
}

func providerOut(p store.Provider) gen.Provider {
	return gen.Provider{Id: p.ID, Name: p.Name, Kind: gen.ProviderKind(p.Kind), BaseUrl: p.BaseURL,
		HasApiKey: p.APIKey != "", CreatedAt: utc(p.CreatedAt), UpdatedAt: utc(p.UpdatedAt)}
}

func modelOut(m store.Model) gen.Model {
	return gen.Model{Id: m.ID, ProviderId: m.ProviderID, Name: m.Name, Label: m.Label, IsDefault: m.IsDefault,
		TokenDelayMs: m.TokenDelayMS, CreatedAt: utc(m.CreatedAt), UpdatedAt: utc(m.UpdatedAt)}
}

// notBlank trims a name; one of only spaces is refused.
func notBlank(field, value string) (string, error) {
	if v := strings.TrimSpace(value); v != "" {
		return v, nil
	}
	return "", problem.Invalid("validation failed", problem.Detail{Location: "body." + field, Message: "a " + field + " of only spaces", Value: value})
}
