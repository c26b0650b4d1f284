package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/llm"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// The family's generate: a run in which the model proposes a record of the kind (or a
// change of one, the run's subject) as a JSON object of the kind's own fields. The
// proposal goes through the same door as a client's create or update: the request schema,
// then the family's checks. With dangerous: false it is staged as a soft call, under the
// key "generate-<run id>", for the caller to accept or discard (soft.go); with dangerous:
// true it is applied.

const kindRecordDraft = "record_draft" // a record of the family drafted from instructions

// generate starts the run; the caller needs the permission (and, for a change, the
// departments) that the create or update it proposes would need.
func (f family) generate(ctx context.Context, k *kind, in *gen.RecordGenerateRequest) (*gen.GenerateResponse, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	op := "create"
	if in.SubjectId != nil {
		op = "update"
		r, err := f.visible(ctx, f.s.store.Q(), id, k, *in.SubjectId)
		if err != nil {
			return nil, err
		}
		if !canManage(id, r.Departments()) {
			return nil, problem.Forbidden("you may not change %s %s", k.Name, r.ID)
		}
	}
	if !id.Can(k.Name, op) {
		return nil, problem.Forbidden("role %q may not %s %s records, so it may not generate one", id.Role, op, k.Name)
	}
	run, err := f.s.startRun(ctx, id, store.Run{Artifact: k.Name, Kind: kindRecordDraft, SubjectID: in.SubjectId},
		runIn{Instructions: in.Instructions, Apply: deref(in.Dangerous)}, in.ModelId, in.GroupId)
	if err != nil {
		return nil, err
	}
	return generated(run, in.IdempotencyKey), nil
}

// recordDraft is the run kind of the family's generate.
type recordDraft struct{ f family }

func (d recordDraft) Prepare(ctx context.Context, q store.Q, run store.Run) (llm.Request, string, error) {
	k, in, err := draftOfRun(run)
	if err != nil {
		return llm.Request{}, "", err
	}
	instructions := strings.Join(in.Instructions, "\n")
	if run.Answer != nil {
		instructions = strings.TrimSpace(instructions + "\n" + *run.Answer)
	}
	if strings.TrimSpace(instructions) == "" { // nothing to go on: ask
		return llm.Request{}, k.question(), nil
	}
	fields := []string{"name", "description"}
	for _, fd := range k.Fields {
		example, _ := json.Marshal(fd.Default)
		fields = append(fields, fmt.Sprintf("%s (like %s)", fd.Name, example))
	}
	context := [][2]string{{"Artifact", k.Title}, {"Fields", strings.Join(fields, ", ")}}
	if run.SubjectID != nil {
		r, err := q.RecordByID(ctx, k.Name, *run.SubjectID)
		if err != nil {
			return llm.Request{}, "", notFound(err, k.Name, *run.SubjectID)
		}
		current, err := json.Marshal(k.own(r))
		if err != nil {
			return llm.Request{}, "", err
		}
		context = append(context, [2]string{"Current record", string(current)})
	}
	return llm.Request{MaxTokens: 800, Messages: []llm.Message{
		{Role: llm.System, Content: llm.TaskPrompt(llm.TaskRecord, context...)},
		{Role: llm.User, Content: instructions},
	}}, "", nil
}

// Deliver stages or applies the proposal, in the transaction that completes the run. A
// proposal the schema or the family's checks refuse fails the run, saying why.
func (d recordDraft) Deliver(ctx context.Context, q store.Q, run store.Run, text string) (map[string]any, error) {
	k, in, err := draftOfRun(run)
	if err != nil {
		return nil, err
	}
	id, err := auth.ProfileIdentity(ctx, q, run.ProfileID)
	if err != nil {
		return nil, err
	}
	op := "create"
	if run.SubjectID != nil {
		op = "update"
	}
	if !id.Can(k.Name, op) {
		return nil, problem.Forbidden("role %q may not %s %s records", id.Role, op, k.Name)
	}
	proposal, err := d.proposal(k, op, run, text)
	if err != nil {
		return nil, err
	}
	key := "generate-" + run.ID.String()
	request := map[string]any{k.Plural: []any{asItem(proposal, run)}}
	if !in.Apply {
		request["soft"], request["idempotency_key"] = true, key
	}
	opID := k.Name + "." + op
	typed, err := typedRequest(opID, request)
	if err != nil {
		return nil, err
	}
	item := bodyOf(typed).items(k.Plural)[0]
	var res map[string]any
	switch {
	case op == "create":
		res, err = family{s: d.f.s, dry: !in.Apply}.createOne(ctx, q, id, k, 0, item)
	default: // a staged update is checked, not stored, until it is accepted
		res, err = d.f.changeOne(ctx, q, id, k, 0, *run.SubjectID, "change", func(q store.Q, i int, r store.Record) (map[string]any, error) {
			return d.f.patch(ctx, q, id, k, i, r, item, in.Apply)
		})
	}
	if err != nil {
		return nil, err
	}
	if res["success"] != true {
		reasons, _ := json.Marshal(res["errors"])
		return nil, fmt.Errorf("the model's %s was refused: %s %s", k.Name, res["message"], reasons)
	}
	out := map[string]any{"operation": opID, k.Name + "_id": res[k.Name+"_id"], "fields": proposal, "applied": in.Apply}
	if in.Apply {
		return out, nil
	}
	staged, err := json.Marshal(typed)
	if err != nil {
		return nil, err
	}
	call := store.SoftCall{ProfileID: id.ProfileID, Key: key, Operation: opID, Request: staged, CreatedAt: store.Now()}
	if op == "create" {
		call.RecordIDs = []uuid.UUID{res[k.Name+"_id"].(uuid.UUID)}
	}
	if err := q.InsertSoftCall(ctx, call); err != nil {
		return nil, err
	}
	out["idempotency_key"] = key
	return out, nil
}

// proposal reads the model's record: the first JSON object in its text, kept to the
// kind's own fields. Fields the request schema refuses are left out (a create without a
// name gets one from the text); what is left must pass it.
func (d recordDraft) proposal(k *kind, op string, run store.Run, text string) (map[string]any, error) {
	var found map[string]any
	start, end := strings.Index(text, "{"), strings.LastIndex(text, "}")
	if start < 0 || end < start || json.Unmarshal([]byte(text[start:end+1]), &found) != nil {
		return nil, fmt.Errorf("the model answered no JSON object: %q", truncate(text, 200))
	}
	proposal := map[string]any{}
	for _, name := range k.ownFields() {
		if v, ok := found[name]; ok {
			proposal[name] = v
		}
	}
	wrap := func() map[string]any { return map[string]any{k.Plural: []any{asItem(proposal, run)}} }
	prefix := "body." + k.Plural + "[0]."
	for _, detail := range d.f.s.door.ValidateRequest(k.Name+"."+op, wrap()) {
		name, _, _ := strings.Cut(strings.TrimPrefix(detail.Location, prefix), ".")
		name, _, _ = strings.Cut(name, "[")
		delete(proposal, name)
	}
	if _, named := proposal["name"]; !named && op == "create" {
		proposal["name"] = truncate(snippetWords(text, 6), 200)
	}
	if details := d.f.s.door.ValidateRequest(k.Name+"."+op, wrap()); details != nil {
		reasons := make([]string, len(details))
		for i, dt := range details {
			reasons[i] = dt.Location + ": " + dt.Message
		}
		return nil, fmt.Errorf("the model's %s does not fit the schema: %s", k.Name, strings.Join(reasons, "; "))
	}
	return proposal, nil
}

// asItem is a proposal as the item of a create, or of an update of the run's subject.
func asItem(proposal map[string]any, run store.Run) map[string]any {
	item := map[string]any{}
	for name, v := range proposal {
		item[name] = v
	}
	if run.SubjectID != nil {
		item["id"] = run.SubjectID.String()
	}
	return item
}

// draftOfRun reads a record draft run's kind and input, which generate wrote.
func draftOfRun(run store.Run) (*kind, runIn, error) {
	var in runIn
	k, ok := kinds[run.Artifact]
	if !ok {
		return nil, in, fmt.Errorf("run %s: %s is no kind of the family", run.ID, run.Artifact)
	}
	return k, in, json.Unmarshal(run.Input, &in)
}

// typedRequest decodes a request of an operation into its generated type.
func typedRequest(opID string, request map[string]any) (any, error) {
	op, ok := gen.OperationByID(opID)
	if !ok {
		return nil, fmt.Errorf("no operation %s", opID)
	}
	raw, err := json.Marshal(request)
	if err != nil {
		return nil, err
	}
	typed := op.NewRequest()
	return typed, json.Unmarshal(raw, typed)
}

// ownFields are the names of a kind's own fields: what its generate may propose.
func (k *kind) ownFields() []string {
	names := []string{"name", "description"}
	for _, fd := range k.Fields {
		names = append(names, fd.Name)
	}
	return names
}

// own is a record's own fields, as its generate sees them.
func (k *kind) own(r store.Record) map[string]any {
	full := k.out(r)
	m := map[string]any{}
	for _, name := range k.ownFields() {
		m[name] = full[name]
	}
	return m
}

// snippetWords is the first n words of text.
func snippetWords(text string, n int) string {
	words := strings.Fields(text)
	if len(words) > n {
		words = words[:n]
	}
	if len(words) == 0 {
		return "Untitled"
	}
	return strings.Join(words, " ")
}
