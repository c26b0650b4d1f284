package testserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	sio "github.com/zishang520/socket.io/clients/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Client is a socket.io connection to the test server, made with the library's Go client
// over websocket.
type Client struct {
	sock *sio.Socket

	mu     sync.Mutex
	events []Event
	added  chan struct{} // closed and replaced whenever an event arrives

	gone     chan struct{} // closed on disconnect
	goneOnce sync.Once
	reason   string // why it disconnected, once gone is closed
}

// Event is a server-pushed event.
type Event struct {
	Name string
	Data json.RawMessage
}

// Dial connects with a token and fails the test when the server refuses.
func (e *Env) Dial(t testing.TB, token string) *Client {
	t.Helper()
	c, err := e.DialErr(t, token)
	if err != nil {
		t.Fatalf("socket.io connect: %v", err)
	}
	return c
}

// DialErr connects with a token ("" sends no auth) and returns the server's connect_error,
// if any. The connection is closed when t ends.
//
// The library's Go client now and then misses its own "open" event on a busy machine and
// never connects; such a dial is retried, up to three times in all.
func (e *Env) DialErr(t testing.TB, token string) (*Client, error) {
	t.Helper()
	var err error
	for range 3 {
		var c *Client
		c, err = e.dial(t, token)
		if !errors.Is(err, errNoAnswer) {
			return c, err
		}
	}
	return nil, err
}

var errNoAnswer = errors.New("no connect or connect_error within 5s")

func (e *Env) dial(t testing.TB, token string) (*Client, error) {
	opts := sio.DefaultOptions()
	// The Go client may pick WebTransport from an unordered default set: name the transport.
	opts.SetTransports(types.NewSet(sio.WebSocket))
	opts.SetReconnection(false)
	opts.SetForceNew(true)
	opts.SetTimeout(5 * time.Second)
	if token != "" {
		opts.SetAuth(map[string]any{"token": "Bearer " + token})
	}
	sock, err := sio.Connect(e.URL, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{sock: sock, added: make(chan struct{}), gone: make(chan struct{})}
	_ = sock.On("disconnect", func(args ...any) {
		c.goneOnce.Do(func() {
			if len(args) > 0 {
				c.reason = fmt.Sprint(args[0])
			}
			close(c.gone)
		})
	})
	result := make(chan error, 1)
	_ = sock.On("connect", func(...any) {
		select {
		case result <- nil:
		default:
		}
	})
	_ = sock.On("connect_error", func(args ...any) {
		err := errors.New("connect_error")
		if len(args) > 0 {
			if e, ok := args[0].(error); ok {
				err = e
			}
		}
		select {
		case result <- err:
		default:
		}
	})
	sock.OnAny(func(args ...any) { c.record(args) })
	select {
	case err := <-result:
		if err != nil && err.Error() != "timeout" {
			c.Close()
			return nil, err
		}
		if err == nil {
			t.Cleanup(c.Close)
			return c, nil
		}
	case <-time.After(6 * time.Second):
	}
	c.Close()
	return nil, errNoAnswer
}

func (c *Client) record(args []any) {
	if len(args) == 0 {
		return
	}
	name, _ := args[0].(string)
	var data json.RawMessage
	if len(args) > 1 {
		data, _ = json.Marshal(args[1])
	}
	c.mu.Lock()
	c.events = append(c.events, Event{Name: name, Data: data})
	close(c.added)
	c.added = make(chan struct{})
	c.mu.Unlock()
}

// Call emits an event with one argument (none when arg is nil) and waits for the ack's
// {status, body}.
func (c *Client) Call(t testing.TB, event string, arg any) (int, json.RawMessage) {
	t.Helper()
	status, body, err := c.CallErr(event, arg, 30*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	return status, body
}

// CallErr is Call returning its failure.
func (c *Client) CallErr(event string, arg any, timeout time.Duration) (int, json.RawMessage, error) {
	acked := make(chan []any, 1)
	ack := func(args []any, err error) {
		if err == nil {
			acked <- args
		}
	}
	var err error
	if arg == nil {
		err = c.sock.Emit(event, ack)
	} else {
		err = c.sock.Emit(event, arg, ack)
	}
	if err != nil {
		return 0, nil, err
	}
	select {
	case args := <-acked:
		return decodeAck(args)
	case <-c.gone:
		return 0, nil, fmt.Errorf("the socket disconnected (%s) before the ack", c.reason)
	case <-time.After(timeout):
		return 0, nil, fmt.Errorf("no ack within %s", timeout)
	}
}

// decodeAck reads the {status, body} envelope.
func decodeAck(args []any) (int, json.RawMessage, error) {
	if len(args) != 1 {
		return 0, nil, fmt.Errorf("ack has %d arguments, want 1: %v", len(args), args)
	}
	env, ok := args[0].(map[string]any)
	if !ok {
		return 0, nil, fmt.Errorf("ack is %T, want an object", args[0])
	}
	status, ok := env["status"].(float64)
	if !ok {
		return 0, nil, fmt.Errorf("ack has no numeric status: %v", env)
	}
	body, err := json.Marshal(env["body"])
	return int(status), body, err
}

// WaitEvent waits for the first event named name that matches (match may be nil), counting
// events that arrived before the call.
func (c *Client) WaitEvent(t testing.TB, name string, match func(json.RawMessage) bool, timeout time.Duration) Event {
	t.Helper()
	deadline := time.After(timeout)
	for seen := 0; ; {
		c.mu.Lock()
		events, added := c.events, c.added
		c.mu.Unlock()
		for ; seen < len(events); seen++ {
			if ev := events[seen]; ev.Name == name && (match == nil || match(ev.Data)) {
				return ev
			}
		}
		select {
		case <-added:
		case <-deadline:
			t.Fatalf("no %s event within %s", name, timeout)
		}
	}
}

// Events returns the events received so far.
func (c *Client) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// Disconnected is closed when the server disconnects the socket (or Close is called).
func (c *Client) Disconnected() <-chan struct{} { return c.gone }

// Close disconnects.
func (c *Client) Close() { c.sock.Disconnect() }
