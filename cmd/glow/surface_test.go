package main

import (
	"encoding/json"
	"strings"
	"testing"

	glowspec "github.com/glowhq/glow"
	"github.com/glowhq/glow/gen"
	"github.com/glowhq/glow/internal/dispatch"
	"github.com/glowhq/glow/internal/mcptools"
)

// Every operation of openapi.yaml is a command of this binary and an MCP tool, and nothing
// else is: the spec's list, the commands' and the tools' are the same.
func TestEveryOperationIsACommandAndATool(t *testing.T) {
	contract, err := dispatch.NewContract(glowspec.Spec)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(contract.Doc)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := mcptools.Tools(spec)
	if err != nil {
		t.Fatal(err)
	}
	inSpec := map[string]bool{}
	for path, item := range contract.Doc.Paths.Map() {
		if item.Post == nil {
			continue
		}
		id := item.Post.OperationID
		inSpec[id] = true
		op, rest := findOperation(strings.Split(strings.TrimPrefix(path, "/"), "/"))
		if op == nil || op.ID != id || len(rest) != 0 {
			t.Errorf("%s (%s) is no command", id, path)
		}
		if tools[id] == nil {
			t.Errorf("%s is no MCP tool", id)
		}
	}
	if len(inSpec) != len(gen.Operations) || len(tools) != len(inSpec) {
		t.Errorf("%d operations in the spec, %d commands, %d tools", len(inSpec), len(gen.Operations), len(tools))
	}
}
