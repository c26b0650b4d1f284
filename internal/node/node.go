// Package node names this process among the processes that share glow's database, and tells
// whether a process so named has ended, so that what a dead process left reserved can be
// taken over at once.
package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

var host, self = func() (string, string) {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return h, fmt.Sprintf("%s/%d/%s", h, os.Getpid(), hex.EncodeToString(b[:]))
}()

// Self names this process: <host>/<pid>/<random>, unique across restarts.
func Self() string { return self }

// Gone reports whether the process a name of Self's form names has surely ended: it ran on
// this host, and its pid is either no process any more or this one's (a name this process
// did not take is a former process's). A process of another host, or a name of another
// form, is not known to have ended.
func Gone(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != host || name == self {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
