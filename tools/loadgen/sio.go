package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// A minimal Engine.IO v4 / Socket.IO v5 client over one websocket, default namespace only.
// It does exactly what a benchmark needs (connect with auth, emit with an ack id, match the
// ack, answer pings, count pushed events) and nothing else, so that the load generator
// spends as little CPU per call as it can.

// Engine.IO packet types (the first byte of every websocket message).
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// Socket.IO packet types (the second byte of an Engine.IO message).
const (
	sioConnect      = '0'
	sioDisconnect   = '1'
	sioEvent        = '2'
	sioAck          = '3'
	sioConnectError = '4'
	sioBinaryEvent  = '5'
	sioBinaryAck    = '6'
)

// packet is one decoded websocket message. Data aliases the message.
type packet struct {
	EIO         byte   // Engine.IO type
	SIO         byte   // Socket.IO type, when EIO is eioMessage
	Attachments int    // binary attachments announced by a binary event or ack
	Namespace   string // "/" unless the packet names another
	ID          int64  // ack id, or -1
	Data        []byte // the JSON payload (Engine.IO: everything after the type byte)
}

// parsePacket decodes a websocket text message: an Engine.IO packet, and for messages the
// Socket.IO packet inside, <type>[<attachments>-][<namespace>,][<id>][<json>].
func parsePacket(msg []byte) (packet, error) {
	p := packet{ID: -1, Namespace: "/"}
	if len(msg) == 0 {
		return p, errors.New("empty message")
	}
	p.EIO = msg[0]
	switch p.EIO {
	case eioOpen, eioClose, eioPing, eioPong, eioUpgrade, eioNoop:
		p.Data = msg[1:]
		return p, nil
	case eioMessage:
	default:
		return p, fmt.Errorf("unknown engine.io packet type %q", p.EIO)
	}
	if len(msg) < 2 {
		return p, errors.New("engine.io message without a socket.io packet")
	}
	p.SIO = msg[1]
	if p.SIO < sioConnect || p.SIO > sioBinaryAck {
		return p, fmt.Errorf("unknown socket.io packet type %q", p.SIO)
	}
	rest := msg[2:]
	if p.SIO == sioBinaryEvent || p.SIO == sioBinaryAck {
		dash := bytes.IndexByte(rest, '-')
		if dash < 1 {
			return p, errors.New("binary packet without an attachment count")
		}
		n, err := strconv.Atoi(string(rest[:dash]))
		if err != nil || n < 0 {
			return p, fmt.Errorf("bad attachment count %q", rest[:dash])
		}
		p.Attachments, rest = n, rest[dash+1:]
	}
	if len(rest) > 0 && rest[0] == '/' {
		comma := bytes.IndexByte(rest, ',')
		if comma < 0 {
			// A namespace with nothing after it, e.g. "41/admin".
			p.Namespace, rest = string(rest), nil
		} else {
			p.Namespace, rest = string(rest[:comma]), rest[comma+1:]
		}
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		id, err := strconv.ParseInt(string(rest[:digits]), 10, 64)
		if err != nil {
			return p, fmt.Errorf("bad ack id %q", rest[:digits])
		}
		p.ID, rest = id, rest[digits:]
	}
	if (p.SIO == sioAck || p.SIO == sioBinaryAck) && p.ID < 0 {
		return p, errors.New("ack without an id")
	}
	p.Data = rest
	return p, nil
}

// appendEvent appends the message `42<id>["<event>",<arg>]`; arg must be JSON.
func appendEvent(dst []byte, id int64, event string, arg []byte) []byte {
	dst = append(dst, eioMessage, sioEvent)
	dst = strconv.AppendInt(dst, id, 10)
	dst = append(dst, '[')
	dst = strconv.AppendQuote(dst, event) // event names are plain ASCII: a valid JSON string
	if arg != nil {
		dst = append(dst, ',')
		dst = append(dst, arg...)
	}
	return append(dst, ']')
}

// ackStatus reads the status of an ack's arguments, [{"status": <int>, "body": …}], without
// decoding the body.
func ackStatus(args []byte) (int, error) {
	var env [1]struct {
		Status *int `json:"status"`
	}
	if err := json.Unmarshal(args, &env); err != nil {
		return 0, fmt.Errorf("ack is not [{status, body}]: %v", err)
	}
	if env[0].Status == nil {
		return 0, errors.New("ack has no status")
	}
	return *env[0].Status, nil
}

// decodeAck reads the whole {status, body} envelope of an ack.
func decodeAck(args []byte) (int, json.RawMessage, error) {
	var env []struct {
		Status *int            `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(args, &env); err != nil {
		return 0, nil, fmt.Errorf("ack is not [{status, body}]: %v", err)
	}
	if len(env) != 1 || env[0].Status == nil {
		return 0, nil, fmt.Errorf("ack is not [{status, body}]: %s", args)
	}
	return *env[0].Status, env[0].Body, nil
}

// socketURL turns the server's base URL into the socket.io websocket endpoint.
func socketURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL must be http:// or https:// (got %q)", base)
	}
	u.Path, u.RawQuery = "/socket.io/", "EIO=4&transport=websocket"
	return u.String(), nil
}

// errClosed is returned for calls on a connection that is gone.
var errClosed = errors.New("socket.io connection closed")

// sioConn is one connected socket.io client.
type sioConn struct {
	ws *websocket.Conn

	wmu  sync.Mutex // one writer at a time
	wbuf []byte

	nextID atomic.Int64
	mu     sync.Mutex
	wait   map[int64]chan<- []byte // ack id → whoever waits for it
	err    error                   // why the connection ended, once done is closed
	done   chan struct{}

	pushes atomic.Int64 // server-pushed events received (events without an ack id)

	// onPush, when set, is called on the read goroutine with each pushed event's
	// arguments (`["<event>", <payload>]`, valid only during the call) and the time the
	// read loop began reading its websocket message.
	onPush func(args []byte, at time.Time)
}

// dialSIO opens the websocket, reads the Engine.IO OPEN, sends the Socket.IO CONNECT with
// auth {token: "Bearer <token>"} and waits for the server's CONNECT (or CONNECT_ERROR).
func dialSIO(ctx context.Context, wsURL, token string, timeout time.Duration) (*sioConn, error) {
	return dialSIOPush(ctx, wsURL, token, timeout, nil)
}

// dialSIOPush is dialSIO with a function called for every pushed event (nil: none).
func dialSIOPush(ctx context.Context, wsURL, token string, timeout time.Duration, onPush func(args []byte, at time.Time)) (*sioConn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: timeout, ReadBufferSize: 4096, WriteBufferSize: 4096}
	ws, res, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		if res != nil {
			return nil, fmt.Errorf("websocket handshake: %v (HTTP %d)", err, res.StatusCode)
		}
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c := &sioConn{ws: ws, wait: map[int64]chan<- []byte{}, done: make(chan struct{}), onPush: onPush}
	if err := c.handshake(ctx, token); err != nil {
		ws.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

func (c *sioConn) handshake(ctx context.Context, token string) error {
	deadline, _ := ctx.Deadline()
	_ = c.ws.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.ws.SetReadDeadline(time.Now()) })
	defer stop()

	_, msg, err := c.ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("read engine.io open: %w", err)
	}
	p, err := parsePacket(msg)
	if err != nil || p.EIO != eioOpen {
		return fmt.Errorf("expected engine.io open, got %q", msg)
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(p.Data, &open); err != nil || open.SID == "" {
		return fmt.Errorf("bad engine.io open %q", msg)
	}
	connect := []byte{eioMessage, sioConnect}
	if token != "" {
		auth, _ := json.Marshal(map[string]string{"token": "Bearer " + token})
		connect = append(connect, auth...)
	}
	if err := c.write(connect); err != nil {
		return fmt.Errorf("send connect: %w", err)
	}
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("wait for connect: %w", err)
		}
		p, err := parsePacket(msg)
		if err != nil {
			return err
		}
		switch {
		case p.EIO == eioPing:
			if err := c.write([]byte{eioPong}); err != nil {
				return err
			}
		case p.EIO == eioMessage && p.SIO == sioConnect && p.Namespace == "/":
			_ = c.ws.SetReadDeadline(time.Time{})
			return nil
		case p.EIO == eioMessage && p.SIO == sioConnectError:
			var e struct {
				Message string `json:"message"`
			}
			_ = json.Unmarshal(p.Data, &e)
			return &connectError{Message: e.Message, Data: append([]byte(nil), p.Data...)}
		case p.EIO == eioClose:
			return errors.New("server closed the connection during connect")
		}
	}
}

// connectError is the server's CONNECT_ERROR.
type connectError struct {
	Message string
	Data    []byte
}

func (e *connectError) Error() string { return "connect_error: " + e.Message }

func (c *sioConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// readLoop answers pings, counts pushed events and hands acks to their callers until the
// connection ends.
func (c *sioConn) readLoop() {
	var buf bytes.Buffer
	var err error
	for {
		var r io.Reader
		if _, r, err = c.ws.NextReader(); err != nil {
			break
		}
		var at time.Time
		if c.onPush != nil {
			at = time.Now()
		}
		buf.Reset()
		if _, err = buf.ReadFrom(r); err != nil {
			break
		}
		p, perr := parsePacket(buf.Bytes())
		if perr != nil {
			err = fmt.Errorf("bad packet %q: %v", truncate(buf.Bytes(), 80), perr)
			break
		}
		switch p.EIO {
		case eioPing:
			err = c.write([]byte{eioPong})
		case eioClose:
			err = errors.New("server sent engine.io close")
		case eioMessage:
			switch p.SIO {
			case sioAck:
				c.mu.Lock()
				ch := c.wait[p.ID]
				delete(c.wait, p.ID)
				c.mu.Unlock()
				if ch != nil {
					ch <- append([]byte(nil), p.Data...) // buffered: never blocks
				}
			case sioEvent, sioBinaryEvent:
				if p.ID < 0 {
					c.pushes.Add(1)
					if c.onPush != nil {
						c.onPush(p.Data, at)
					}
				}
			case sioDisconnect:
				err = errors.New("server disconnected the socket")
			}
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.err = err
	c.wait = nil
	c.mu.Unlock()
	close(c.done)
	c.ws.Close()
}

// Call emits event with one JSON argument and returns the ack's arguments (a JSON array).
func (c *sioConn) Call(ctx context.Context, event string, arg []byte, timeout time.Duration) ([]byte, error) {
	id := c.nextID.Add(1)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.wait == nil {
		err := c.err
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %v", errClosed, err)
	}
	c.wait[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	c.wbuf = appendEvent(c.wbuf[:0], id, event, arg)
	err := c.ws.WriteMessage(websocket.TextMessage, c.wbuf)
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("send: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case args := <-ch:
		return args, nil
	case <-c.done:
		select { // the ack may have raced the close
		case args := <-ch:
			return args, nil
		default:
		}
		return nil, fmt.Errorf("%w: %v", errClosed, c.closeErr())
	case <-t.C:
		c.forget(id)
		return nil, errTimeout
	case <-ctx.Done():
		c.forget(id)
		return nil, ctx.Err()
	}
}

var errTimeout = errors.New("no ack within the call timeout")

func (c *sioConn) forget(id int64) {
	c.mu.Lock()
	if c.wait != nil {
		delete(c.wait, id)
	}
	c.mu.Unlock()
}

func (c *sioConn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close sends a websocket close frame and closes the connection without waiting for the
// server's answer. It also ends calls blocked on the connection. WriteControl may run
// concurrently with a writer, so it does not take the write lock.
func (c *sioConn) Close() {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.ws.Close()
	<-c.done
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
