package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/tidwall/gjson"
)

// OpenAI streams from a server that speaks OpenAI's Chat Completions API with stream: true.
type OpenAI struct {
	client openai.Client
}

// OpenAIConfig locates the server.
type OpenAIConfig struct {
	BaseURL string // e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1 (Ollama)
	APIKey  string // may be empty for local servers
	// Timeout bounds the whole request, stream included (default 5 minutes).
	Timeout time.Duration
	// HTTPClient replaces the default client (tests).
	HTTPClient *http.Client
}

// NewOpenAI returns a generator for the server of cfg. A failed request is retried once.
func NewOpenAI(cfg OpenAIConfig) *OpenAI {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	opts := []option.RequestOption{
		option.WithBaseURL(cfg.BaseURL),
		option.WithAPIKey(cfg.APIKey),
		option.WithMaxRetries(1),
		option.WithRequestTimeout(cfg.Timeout),
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	return &OpenAI{client: openai.NewClient(opts...)}
}

// Stream sends the request with stream: true and emits each content delta. A stream that
// ends without a finish reason is ErrIncomplete; an error the server sends mid-stream is
// returned as an error.
func (o *OpenAI) Stream(ctx context.Context, req Request, emit func(string) error) (Usage, error) {
	params := openai.ChatCompletionNewParams{
		Model:         req.Model,
		Messages:      make([]openai.ChatCompletionMessageParamUnion, 0, len(req.Messages)),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	if req.MaxTokens > 0 {
		params.MaxCompletionTokens = openai.Int(int64(req.MaxTokens))
	}
	for _, m := range req.Messages {
		switch m.Role {
		case System:
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case Assistant:
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		}
	}

	stream := o.client.Chat.Completions.NewStreaming(ctx, params)
	defer stream.Close()
	var usage Usage
	finished := false
	for stream.Next() {
		chunk := stream.Current()
		if chunk.Usage.TotalTokens > 0 {
			usage = Usage{PromptTokens: int(chunk.Usage.PromptTokens), CompletionTokens: int(chunk.Usage.CompletionTokens)}
		}
		for _, choice := range chunk.Choices {
			if choice.Delta.Content != "" {
				if err := emit(choice.Delta.Content); err != nil {
					return usage, err
				}
			}
			if choice.FinishReason != "" {
				finished = true
			}
		}
	}
	if err := stream.Err(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return usage, ctxErr
		}
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			return usage, fmt.Errorf("model server answered %d: %s", apiErr.StatusCode, apiErr.Message)
		}
		var streamErr *ssestream.StreamError
		if errors.As(err, &streamErr) {
			if msg := gjson.GetBytes(streamErr.Event.Data, "error.message").String(); msg != "" {
				return usage, fmt.Errorf("model server reported an error mid-stream: %s", msg)
			}
		}
		return usage, fmt.Errorf("model stream: %w", err)
	}
	if !finished {
		return usage, ErrIncomplete
	}
	return usage, nil
}
