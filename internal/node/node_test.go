package node_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/glowhq/glow/internal/node"
)

func TestGone(t *testing.T) {
	host := strings.Split(node.Self(), "/")[0]
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Skipf("cannot run a child process: %v", err)
	}
	for name, want := range map[string]bool{
		node.Self(): false,
		fmt.Sprintf("%s/%d/0123456789ab", host, ended.Process.Pid):  true,  // a process that ended
		fmt.Sprintf("%s/%d/0123456789ab", host, os.Getpid()):        true,  // a former process with this pid
		fmt.Sprintf("%s/%d/0123456789ab", host, os.Getppid()):       false, // a live process
		fmt.Sprintf("elsewhere/%d/0123456789ab", ended.Process.Pid): false,
		"":            false,
		host + "/x/y": false,
		host + "/0/y": false,
	} {
		if got := node.Gone(name); got != want {
			t.Errorf("Gone(%q) = %v, want %v", name, got, want)
		}
	}
}
