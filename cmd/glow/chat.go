package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// chatWindow is how long inbound events gather before they are printed together.
const chatWindow = 50 * time.Millisecond

// chatDrainLimit bounds how long the REPL waits, at the end of its input, for the replies
// still streaming.
const chatDrainLimit = 2 * time.Minute

// chatLive is glow attempt chat live <chat_id> [--persona <id>]: the live chat REPL. It
// follows the chat's attempt topic and prints every event as "<event>: <json>", gathered in
// 50 ms windows (a reply's text shows as it streams, delta by delta); every line read from
// stdin is sent as attempt.chat_message. It ends at EOF (once the replies still streaming
// have ended), or on ":quit" or ":q" at once. With --persona and no chat_id, it starts an
// attempt with that persona first.
func chatLive(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("glow attempt chat live", flag.ContinueOnError)
	fs.SetOutput(stderr)
	persona := fs.String("persona", "", "start a new attempt with this persona (its id) when no chat_id is given")
	url := fs.String("url", "", "the server (GLOW_URL; default: glow login's, else http://127.0.0.1:8080)")
	token := fs.String("token", "", "the bearer token (GLOW_TOKEN; default: glow login's)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: glow attempt chat live [<chat_id>] [--persona <id>]\n\n"+
			"Chats live: every line you type is sent as attempt.chat_message, and every event of the\n"+
			"chat is printed as \"<event>: <json>\" as it arrives. Ends at the end of input, or on :quit or :q.\n\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	chatID := fs.Arg(0)
	cfg := loadConfig()
	base := firstOf(*url, os.Getenv("GLOW_URL"), cfg.URL, "http://127.0.0.1:8080")
	bearer := firstOf(*token, os.Getenv("GLOW_TOKEN"), cfg.Token)
	call := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		status, answer, err := post(base, bearer, path, b)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: %d %s", path, status, answer)
		}
		return json.Unmarshal(answer, out)
	}
	if chatID == "" {
		if *persona == "" {
			fmt.Fprintln(stderr, "glow attempt chat live: give a chat_id, or --persona to start an attempt")
			return errUsage
		}
		var started struct {
			ChatID string `json:"chat_id"`
		}
		if err := call("/attempt/start", map[string]string{"persona_id": *persona}, &started); err != nil {
			return err
		}
		chatID = started.ChatID
		fmt.Fprintf(stdout, "chat: %s\n", chatID)
	}
	var chat struct {
		Topic   string `json:"topic"`
		LastSeq int64  `json:"last_seq"`
	}
	if err := call("/attempt/chat/get", map[string]string{"chat_id": chatID}, &chat); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	events := make(chan streamFrame, 1024)
	followed := make(chan error, 1)
	go func() { followed <- follow(ctx, base, bearer, "attempt", chat.Topic, chat.LastSeq, events) }()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	pending := map[string]bool{}  // the replies still streaming
	finished := map[string]bool{} // the replies that ended (perhaps before their message's answer was read)
	var batch []streamFrame
	var window <-chan time.Time
	var drainBy <-chan time.Time // set at the end of input
	flush := func() {
		for _, ev := range batch {
			fmt.Fprintf(stdout, "%s: %s\n", ev.Name, ev.Data)
			if strings.HasSuffix(ev.Name, ".completed") || strings.HasSuffix(ev.Name, ".failed") || strings.HasSuffix(ev.Name, ".stopped") {
				var d struct {
					RunID string `json:"run_id"`
				}
				_ = json.Unmarshal(ev.Data, &d)
				delete(pending, d.RunID)
				finished[d.RunID] = true
			}
		}
		batch, window = nil, nil
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				flush()
				if err := <-followed; err != nil {
					return err
				}
				return fmt.Errorf("the chat's stream ended")
			}
			batch = append(batch, ev)
			if window == nil {
				window = time.After(chatWindow)
			}
		case <-window:
			flush()
			if drainBy != nil && len(pending) == 0 {
				return nil
			}
		case line, ok := <-lines:
			if !ok { // the end of input: let the replies in flight finish
				lines = nil
				if len(pending) == 0 && len(batch) == 0 {
					return nil
				}
				drainBy = time.After(chatDrainLimit)
				continue
			}
			switch strings.TrimSpace(line) {
			case ":quit", ":q":
				flush()
				return nil
			case "":
				continue
			}
			var sent struct {
				ReplyRunID string `json:"reply_run_id"`
			}
			if err := call("/attempt/chat/message", map[string]string{"chat_id": chatID, "text": line}, &sent); err != nil {
				fmt.Fprintf(stderr, "glow: %v\n", err)
				continue
			}
			if sent.ReplyRunID != "" && !finished[sent.ReplyRunID] {
				pending[sent.ReplyRunID] = true
			}
		case <-drainBy:
			flush()
			return fmt.Errorf("replies still streaming %s after the end of input", chatDrainLimit)
		case <-ctx.Done():
			flush()
			return nil
		}
	}
}
