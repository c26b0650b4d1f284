package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/auth"
	"github.com/glowhq/glow/internal/problem"
	"github.com/glowhq/glow/store"
)

// The soft/accept protocol of the family's create, update and delete: `soft: true` stages
// the call under its idempotency key, and a later call of the same operation with that key
// and `accept` carries it out (true) or discards it (false). A staged create stores its
// records pending, seen by the caller alone (search marks them `pending`); a staged update
// or delete changes nothing and answers what it would do. The dispatcher does not replay
// an accepting call from the key's receipt: the key names the staged call there
// (dispatch.idempotencyKey).

// errDryRun rolls back what a staged update or delete did.
var errDryRun = errors.New("staged: rolled back")

// stage serves a call with soft: true.
func (f family) stage(ctx context.Context, id *auth.Identity, k *kind, op *gen.Operation, in any, req body) (map[string]any, error) {
	key := req.strp("idempotency_key") // soft is in the requests of create, update and delete only
	if key == nil {
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body.idempotency_key", Message: "a soft call needs an idempotency_key: it names the staged call"})
	}
	staging := family{s: f.s, dry: true}
	res, err := staging.serve(ctx, id, k, op.Name, req)
	if err != nil {
		return nil, err
	}
	var records []uuid.UUID // the records a create staged
	if op.Name == "create" {
		for _, r := range res["results"].([]map[string]any) {
			if r["success"] == true {
				records = append(records, r[k.Name+"_id"].(uuid.UUID))
			}
		}
	}
	request, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	q := f.s.store.Q()
	err = q.InsertSoftCall(ctx, store.SoftCall{ProfileID: id.ProfileID, Key: *key, Operation: op.ID, Request: request,
		RecordIDs: records, CreatedAt: store.Now()})
	if err != nil {
		if perr := q.PurgeRecords(context.WithoutCancel(ctx), records); perr != nil {
			err = errors.Join(err, perr)
		}
		if errors.Is(err, store.ErrDuplicate) {
			return nil, problem.Conflict("a call was already staged under idempotency key %q", *key)
		}
		return nil, err
	}
	res["pending"] = true
	return res, nil
}

// accept carries out (accept: true) or discards a staged call.
func (f family) accept(ctx context.Context, id *auth.Identity, k *kind, op *gen.Operation, req body) (map[string]any, error) {
	key := req.strp("idempotency_key")
	if key == nil {
		return nil, problem.Invalid("validation failed", problem.Detail{Location: "body.idempotency_key", Message: "accept needs the idempotency_key of the staged call"})
	}
	for name := range req.present() {
		if name != "accept" && name != "idempotency_key" {
			return nil, problem.Invalid("validation failed", problem.Detail{Location: "body." + name, Message: "a call that accepts takes only idempotency_key and accept"})
		}
	}
	accept := req.bool("accept")
	status := store.SoftRejected
	if accept {
		status = store.SoftAccepted
	}
	var call store.SoftCall
	err := f.s.store.Tx(ctx, func(q store.Q) error {
		var err error
		if call, err = q.SoftCallByKey(ctx, id.ProfileID, *key); errors.Is(err, store.ErrNotFound) {
			return problem.NotFound("you staged no call under idempotency key %q", *key)
		} else if err != nil {
			return err
		}
		switch {
		case call.Operation != op.ID:
			return problem.Conflict("the call staged under %q is a %s, not a %s", *key, call.Operation, op.ID)
		case call.Status != store.SoftPending:
			return problem.Conflict("the call staged under %q was already %s", *key, call.Status)
		}
		if err := q.DecideSoftCall(ctx, id.ProfileID, *key, status); errors.Is(err, store.ErrNotFound) {
			return problem.Conflict("the call staged under %q was decided meanwhile", *key)
		} else if err != nil {
			return err
		}
		if op.Name != "create" {
			return nil
		}
		if accept {
			for _, recordID := range call.RecordIDs {
				if err := f.mirrorStaged(ctx, q, k, recordID); err != nil {
					return err
				}
			}
			return q.PromoteRecords(ctx, call.RecordIDs)
		}
		return q.PurgeRecords(ctx, call.RecordIDs)
	})
	if err != nil {
		return nil, err
	}
	res := map[string]any{"results": []map[string]any{}, "pending": false}
	switch {
	case op.Name == "create":
		results := make([]map[string]any, len(call.RecordIDs))
		message := "created"
		if !accept {
			message = "discarded"
		}
		for i, recordID := range call.RecordIDs {
			results[i] = result(i, k, &recordID, true, message)
		}
		res["results"] = results
	case accept: // an update or delete is carried out now, checked as if it came now
		staged := op.NewRequest()
		if err := json.Unmarshal(call.Request, staged); err != nil {
			return nil, fmt.Errorf("soft call %q: stored request: %w", *key, err)
		}
		if res, err = f.serve(ctx, id, k, op.Name, bodyOf(staged)); err != nil {
			return nil, err
		}
		res["pending"] = false
	}
	return res, nil
}

// mirrorStaged mirrors a staged record as its create is accepted (a staged department is
// no department yet: nothing may belong to it).
func (f family) mirrorStaged(ctx context.Context, q store.Q, k *kind, recordID uuid.UUID) error {
	if k.Mirror == nil {
		return nil
	}
	r, err := q.RecordByID(ctx, k.Name, recordID)
	if err != nil {
		return err
	}
	if errs, err := k.save(ctx, q, r); err != nil {
		return err
	} else if errs != nil {
		return problem.Conflict("%s %q: %s", k.Name, r.Name, errs[0].Message)
	}
	return nil
}
