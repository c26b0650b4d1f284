package apidocs

import (
	"encoding/json"
	"strings"
	"testing"

	glow "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
)

// Every operation of the spec, in the reference, says its HTTP route, its socket.io event
// and the lifecycle events it pushes; one that starts a run, the run's events too; each
// has a curl and a socket.io sample.
func TestAnnotateDescribesEveryOperation(t *testing.T) {
	contract, err := dispatch.NewContract(glow.Spec)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(contract.Doc) // as /openapi.json serves it
	if err != nil {
		t.Fatal(err)
	}
	out, err := Annotate(spec)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Description string              `json:"description"`
			Samples     []map[string]string `json:"x-codeSamples"`
			Run         bool                `json:"x-glow-run"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, op := range gen.Operations {
		o, ok := doc.Paths[op.Path]["post"]
		if !ok {
			t.Errorf("%s: not in the annotated spec", op.ID)
			continue
		}
		for _, want := range []string{"`POST " + op.Path + "`", "the event `" + op.ID + "`",
			"`" + op.ID + ".started`", "`" + op.ID + ".completed`", "`" + op.ID + ".failed`"} {
			if !strings.Contains(o.Description, want) {
				t.Errorf("%s: the description lacks %s", op.ID, want)
			}
		}
		if o.Run {
			runs++
			if want := "`" + op.Artifact + ".generate.text.progress`"; !strings.Contains(o.Description, want) {
				t.Errorf("%s starts a run, but its description lacks %s", op.ID, want)
			}
		} else if strings.Contains(o.Description, ".generate.text.progress`") && strings.Contains(o.Description, "the run it started") {
			t.Errorf("%s starts no run, but its description lists a run's events", op.ID)
		}
		if len(o.Samples) != 2 || !strings.Contains(o.Samples[1]["source"], `emitWithAck("`+op.ID+`"`) {
			t.Errorf("%s: samples %v, want curl and socket.io", op.ID, o.Samples)
		}
	}
	if runs == 0 {
		t.Error("no operation is marked x-glow-run")
	}
}
