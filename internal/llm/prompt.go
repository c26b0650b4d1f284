package llm

import (
	"fmt"
	"strings"
)

// Tasks the prompts name. Local composes its answer by task.
const (
	TaskChat   = "chat"
	TaskRecord = "draft a record" // of the artifact and fields the "Artifact" and "Fields" lines name
)

// Character is who the model plays in a practice chat.
type Character struct {
	Name      string
	About     string // the persona's description
	Behaviour string // the persona's instructions
	Scenario  string // the situation of the practice, if any
}

// CharacterPrompt is the system prompt of a practice chat. It reads naturally to any model
// and in "Label: value" lines to Local.
func CharacterPrompt(c Character) string {
	var b strings.Builder
	b.WriteString("You are playing a character in a practice conversation with a learner.\n")
	fmt.Fprintf(&b, "Task: %s\n", TaskChat)
	line(&b, "Character", c.Name)
	line(&b, "About the character", c.About)
	line(&b, "How to behave", c.Behaviour)
	line(&b, "Scenario", c.Scenario)
	fmt.Fprintf(&b, "Stay in character as %s and answer in a few sentences.", c.Name)
	return b.String()
}

// TaskPrompt is the system prompt of any other task, with what the model should know as
// "Label: value" lines.
func TaskPrompt(task string, context ...[2]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Task: %s\n", task)
	for _, kv := range context {
		line(&b, kv[0], kv[1])
	}
	if task == TaskRecord {
		b.WriteString("Answer with one JSON object holding the fields to set, and nothing else.")
	}
	return b.String()
}

// line writes "Label: value" with the value on one line; empty values are left out.
func line(b *strings.Builder, label, value string) {
	value = strings.Join(strings.Fields(value), " ")
	if value != "" {
		fmt.Fprintf(b, "%s: %s\n", label, value)
	}
}
