// Package llm streams text from language models: Local, the embedded offline model, and
// OpenAI, any server speaking OpenAI's Chat Completions API (OpenAI, vLLM, Ollama,
// llama.cpp's server). Both stream a completion delta by delta through the same interface.
package llm

import (
	"context"
	"errors"
)

// Roles of a message.
const (
	System    = "system"
	User      = "user"
	Assistant = "assistant"
)

// Message is one turn of the conversation given to a model.
type Message struct {
	Role    string
	Content string
}

// Request asks a model for the next assistant message.
type Request struct {
	Model     string
	Messages  []Message
	MaxTokens int // 0: the provider's default
}

// Usage counts the tokens of a completion.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Generator streams completions.
type Generator interface {
	// Stream generates the completion of req, calling emit with each piece of text in
	// order. It stops early when ctx ends or emit returns an error, and returns that error.
	Stream(ctx context.Context, req Request, emit func(delta string) error) (Usage, error)
}

// ErrIncomplete reports a stream that ended before the model said it had finished.
var ErrIncomplete = errors.New("the model's stream ended before the completion was finished")
