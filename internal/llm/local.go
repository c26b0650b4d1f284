package llm

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode"
)

// Local is the embedded model: offline and deterministic. It reads the character and the
// task from a system prompt written by the prompt builders of this package (CharacterPrompt,
// TaskPrompt) and composes its answer from them and from the conversation, so the same
// conversation always gets the same answer, and different ones get different answers. It
// streams the answer a word at a time, Delay apart.
type Local struct {
	Delay time.Duration
}

// Deterministic reports that the same request always streams the same text, so a stream cut
// short can be resumed by generating again and skipping what was already delivered.
func (Local) Deterministic() bool { return true }

// Stream composes the answer and streams it word by word.
func (l Local) Stream(ctx context.Context, req Request, emit func(string) error) (Usage, error) {
	text := compose(req.Messages)
	tokens := Tokens(text)
	if req.MaxTokens > 0 && len(tokens) > req.MaxTokens {
		tokens = tokens[:req.MaxTokens]
	}
	usage := Usage{PromptTokens: promptTokens(req.Messages)}
	var timer *time.Timer
	for _, tok := range tokens {
		if l.Delay > 0 {
			if timer == nil {
				timer = time.NewTimer(l.Delay)
				defer timer.Stop()
			} else {
				timer.Reset(l.Delay)
			}
			select {
			case <-ctx.Done():
				return usage, ctx.Err()
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			return usage, err
		}
		if err := emit(tok); err != nil {
			return usage, err
		}
		usage.CompletionTokens++
	}
	return usage, nil
}

// Tokens splits text into the pieces Local streams: each word with the spaces before it.
func Tokens(text string) []string {
	var out []string
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

func promptTokens(ms []Message) int {
	n := 0
	for _, m := range ms {
		n += len(strings.Fields(m.Content))
	}
	return n
}

// prompt is what Local understands of a system prompt.
type prompt struct {
	task      string // TaskChat, TaskRecord or another task's name
	character string
	about     string
	behaviour string
	scenario  string
	context   []string // other "Label: value" lines, for generic tasks
}

func parsePrompt(system string) prompt {
	p := prompt{task: TaskChat}
	for _, line := range strings.Split(system, "\n") {
		label, value, ok := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		if !ok || value == "" {
			continue
		}
		switch strings.TrimSpace(label) {
		case "Task":
			p.task = value
		case "Character":
			p.character = value
		case "About the character":
			p.about = value
		case "How to behave":
			p.behaviour = value
		case "Scenario":
			p.scenario = value
		default:
			p.context = append(p.context, line)
		}
	}
	return p
}

func compose(ms []Message) string {
	var system string
	var users []string
	for _, m := range ms {
		switch m.Role {
		case System:
			system += m.Content + "\n"
		case User:
			users = append(users, strings.TrimSpace(m.Content))
		}
	}
	p := parsePrompt(system)
	last := ""
	if len(users) > 0 {
		last = users[len(users)-1]
	}
	switch p.task {
	case TaskChat:
		return composeReply(p, last, len(users))
	case TaskRecord:
		return composeRecord(p, strings.Join(users, " "))
	default:
		return composeGeneric(p, strings.Join(users, " "))
	}
}

// pick chooses one of options from a hash of the seed parts: deterministic, yet different
// for different conversations.
func pick(options []string, seed ...any) string {
	h := fnv.New32a()
	for _, s := range seed {
		fmt.Fprint(h, s, "\x00")
	}
	return options[h.Sum32()%uint32(len(options))]
}

var guardedWords = []string{"tough", "sceptic", "skeptic", "angry", "difficult", "impatient", "demanding", "suspicious", "busy", "frustrated"}

// temperament reads the character's mood from its description and behaviour.
func temperament(p prompt) string {
	text := strings.ToLower(p.about + " " + p.behaviour)
	for _, w := range guardedWords {
		if strings.Contains(text, w) {
			return "guarded"
		}
	}
	for _, w := range []string{"friendly", "warm", "curious", "calm", "open", "enthusiastic"} {
		if strings.Contains(text, w) {
			return "open"
		}
	}
	return "neutral"
}

var stopWords = map[string]bool{
	"about": true, "after": true, "again": true, "because": true, "before": true, "could": true,
	"would": true, "should": true, "there": true, "their": true, "these": true, "those": true,
	"which": true, "while": true, "where": true, "with": true, "what": true, "when": true,
	"your": true, "yours": true, "have": true, "that": true, "this": true, "from": true,
	"will": true, "just": true, "really": true, "think": true, "hello": true, "thanks": true,
}

// topic is the most telling word of a message: its longest word that is not a stop word.
func topic(text string) string {
	best := ""
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && r != '-' }) {
		lw := strings.ToLower(w)
		if len([]rune(lw)) >= 4 && !stopWords[lw] && len([]rune(lw)) > len([]rune(best)) {
			best = lw
		}
	}
	return best
}

// snippet quotes the start of a message, at most n words.
func snippet(text string, n int) string {
	words := strings.Fields(text)
	if len(words) > n {
		return strings.Join(words[:n], " ") + "…"
	}
	return strings.Join(words, " ")
}

func composeReply(p prompt, last string, turn int) string {
	name := p.character
	if name == "" {
		name = "your practice partner"
	}
	mood := temperament(p)
	var b strings.Builder
	if turn <= 1 {
		intro := "Hello, I'm " + name
		if p.about != "" {
			intro += " — " + strings.TrimSuffix(p.about, ".")
		}
		b.WriteString(intro + ". ")
	}
	if last == "" {
		b.WriteString("So, what did you want to talk about?")
		return b.String()
	}
	reactions := map[string][]string{
		"guarded": {"I've heard that kind of thing before.", "I'm not convinced yet.", "That sounds too easy.", "Hm. Go on, but be specific."},
		"open":    {"That's interesting.", "I like where this is going.", "Good, that helps.", "Tell me more."},
		"neutral": {"I see.", "Okay.", "Understood.", "Right."},
	}[mood]
	b.WriteString(fmt.Sprintf("You said “%s”. %s ", snippet(last, 8), pick(reactions, name, turn, last)))
	if strings.HasSuffix(strings.TrimSpace(last), "?") {
		answers := []string{"Honestly, it depends on what you can offer me.", "That's a fair question, but I asked you here for answers.", "I'd rather hear your view first."}
		b.WriteString(pick(answers, last, turn) + " ")
	}
	if t := topic(last); t != "" {
		questions := map[string][]string{
			"guarded": {"What exactly does %s mean for me?", "Why should I trust you on %s?", "What happens if %s goes wrong?"},
			"open":    {"How would %s work in practice?", "Could you give me an example of %s?", "What do you like most about %s?"},
			"neutral": {"Can you say more about %s?", "How does %s fit in?", "What is the next step for %s?"},
		}[mood]
		b.WriteString(fmt.Sprintf(pick(questions, name, turn, t), t))
	} else {
		b.WriteString(pick([]string{"What else?", "And then?", "Where does that leave us?"}, name, turn))
	}
	if p.scenario != "" && turn%3 == 0 {
		b.WriteString(" Remember why we're here: " + strings.TrimSuffix(p.scenario, ".") + ".")
	}
	return b.String()
}

var personaNames = []string{"Avery", "Blake", "Casey", "Dana", "Emery", "Finley", "Harper", "Jordan", "Morgan", "Quinn", "Riley", "Sage"}

// composeRecord drafts the record a TaskRecord prompt asks for: a name and a description
// from the request, as a JSON object; a persona also gets a character to play.
func composeRecord(p prompt, request string) string {
	artifact := "Record"
	for _, line := range p.context {
		if label, value, _ := strings.Cut(line, ":"); strings.TrimSpace(label) == "Artifact" {
			artifact = strings.TrimSpace(value)
		}
	}
	t := topic(request)
	if t == "" {
		t = "everyday use"
	}
	about := snippet(request, 24)
	if about == "" {
		about = "drafted without instructions"
	}
	record := map[string]string{"name": artifact + " for " + t, "description": about}
	if artifact == "Persona" {
		name := pick(personaNames, request)
		mood := pick([]string{"sceptical but fair", "friendly and curious", "busy and to the point", "demanding and detail-minded"}, request)
		record["description"] = fmt.Sprintf("%s, %s, drawn from: %s", name, mood, about)
		record["instructions"] = fmt.Sprintf("Stay in character as %s. Steer the conversation towards %s, answer in two or three sentences, and ask one question back each turn.", name, t)
	}
	out, _ := json.Marshal(record)
	return string(out)
}

func composeGeneric(p prompt, request string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Task: %s.", p.task)
	if request != "" {
		fmt.Fprintf(&b, " You asked: “%s”.", snippet(request, 24))
	}
	if len(p.context) > 0 {
		b.WriteString(" What I know:")
		for _, line := range p.context {
			b.WriteString(" " + strings.TrimSpace(line) + ";")
		}
	}
	if t := topic(request); t != "" {
		fmt.Fprintf(&b, " The main point is %s.", t)
	}
	return b.String()
}
