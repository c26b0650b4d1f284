package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/glowhq/glow/internal/testdb"
	"github.com/glowhq/glow/internal/testserver"
)

func TestParsePacket(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want packet
	}{
		{"2", packet{EIO: eioPing, ID: -1, Namespace: "/", Data: []byte{}}},
		{"3probe", packet{EIO: eioPong, ID: -1, Namespace: "/", Data: []byte("probe")}},
		{`0{"sid":"a","pingInterval":25000}`, packet{EIO: eioOpen, ID: -1, Namespace: "/", Data: []byte(`{"sid":"a","pingInterval":25000}`)}},
		{`40{"sid":"x"}`, packet{EIO: eioMessage, SIO: sioConnect, ID: -1, Namespace: "/", Data: []byte(`{"sid":"x"}`)}},
		{`41`, packet{EIO: eioMessage, SIO: sioDisconnect, ID: -1, Namespace: "/", Data: []byte{}}},
		{`41/admin`, packet{EIO: eioMessage, SIO: sioDisconnect, ID: -1, Namespace: "/admin"}},
		{`42["persona.get.completed",{"a":1}]`, packet{EIO: eioMessage, SIO: sioEvent, ID: -1, Namespace: "/", Data: []byte(`["persona.get.completed",{"a":1}]`)}},
		{`4217["x"]`, packet{EIO: eioMessage, SIO: sioEvent, ID: 17, Namespace: "/", Data: []byte(`["x"]`)}},
		{`42/admin,5["x"]`, packet{EIO: eioMessage, SIO: sioEvent, ID: 5, Namespace: "/admin", Data: []byte(`["x"]`)}},
		{`43123[{"body":{"n":2},"status":200}]`, packet{EIO: eioMessage, SIO: sioAck, ID: 123, Namespace: "/", Data: []byte(`[{"body":{"n":2},"status":200}]`)}},
		{`44{"message":"unauthorized"}`, packet{EIO: eioMessage, SIO: sioConnectError, ID: -1, Namespace: "/", Data: []byte(`{"message":"unauthorized"}`)}},
		{`451-/x,["f",{"_placeholder":true,"num":0}]`, packet{EIO: eioMessage, SIO: sioBinaryEvent, Attachments: 1, ID: -1, Namespace: "/x", Data: []byte(`["f",{"_placeholder":true,"num":0}]`)}},
		{`462-9[]`, packet{EIO: eioMessage, SIO: sioBinaryAck, Attachments: 2, ID: 9, Namespace: "/", Data: []byte(`[]`)}},
	} {
		got, err := parsePacket([]byte(tc.in))
		if err != nil {
			t.Errorf("parsePacket(%q): %v", tc.in, err)
			continue
		}
		if got.EIO != tc.want.EIO || got.SIO != tc.want.SIO || got.Attachments != tc.want.Attachments ||
			got.Namespace != tc.want.Namespace || got.ID != tc.want.ID || string(got.Data) != string(tc.want.Data) {
			t.Errorf("parsePacket(%q) = %+v (data %q), want %+v (data %q)", tc.in, got, got.Data, tc.want, tc.want.Data)
		}
	}
	for _, bad := range []string{"", "9", "4", "47[]", "43[]", "45[]", "45x-[]", "43/admin,[1]", "4399999999999999999999[]"} {
		if p, err := parsePacket([]byte(bad)); err == nil {
			t.Errorf("parsePacket(%q) = %+v, want an error", bad, p)
		}
	}
}

func TestAppendEvent(t *testing.T) {
	msg := appendEvent(nil, 42, "profile.context", []byte(`{}`))
	if string(msg) != `4242["profile.context",{}]` {
		t.Fatalf("appendEvent = %s", msg)
	}
	p, err := parsePacket(msg)
	if err != nil || p.SIO != sioEvent || p.ID != 42 {
		t.Fatalf("appendEvent does not parse back: %+v, %v", p, err)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data, &args); err != nil || len(args) != 2 || string(args[0]) != `"profile.context"` {
		t.Fatalf("event arguments = %s (%v)", p.Data, err)
	}
	if msg := appendEvent(msg[:0], 7, "system.health", nil); string(msg) != `427["system.health"]` {
		t.Fatalf("appendEvent without an argument = %s", msg)
	}
}

func TestAck(t *testing.T) {
	args := []byte(`[{"body":{"status":"ok","n":[1,2]},"status":201}]`)
	if s, err := ackStatus(args); err != nil || s != 201 {
		t.Fatalf("ackStatus = %d, %v", s, err)
	}
	s, body, err := decodeAck(args)
	if err != nil || s != 201 || string(body) != `{"status":"ok","n":[1,2]}` {
		t.Fatalf("decodeAck = %d, %s, %v", s, body, err)
	}
	for _, bad := range []string{`[]`, `{}`, `[{"body":{}}]`, `[{"status":"200"}]`, `nope`} {
		if _, err := ackStatus([]byte(bad)); err == nil {
			t.Errorf("ackStatus(%s) succeeded", bad)
		}
		if _, _, err := decodeAck([]byte(bad)); err == nil {
			t.Errorf("decodeAck(%s) succeeded", bad)
		}
	}
	if _, _, err := decodeAck([]byte(`[{"status":200},{"status":200}]`)); err == nil {
		t.Error("decodeAck accepted two arguments")
	}
}

func TestSocketURL(t *testing.T) {
	got, err := socketURL("http://127.0.0.1:1234")
	if err != nil || got != "ws://127.0.0.1:1234/socket.io/?EIO=4&transport=websocket" {
		t.Fatalf("socketURL = %q, %v", got, err)
	}
	if _, err := socketURL("ftp://x"); err == nil {
		t.Fatal("socketURL accepted ftp://")
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 37 ticks.
	stat := "4242 (glow (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 37 0 0 20 0 9 0 100 0 0"
	d, err := parseStatCPU(stat)
	if err != nil || d != 2870*time.Millisecond {
		t.Fatalf("parseStatCPU = %s, %v", d, err)
	}
	if _, err := parseStatCPU("4242 (x) S 1"); err == nil {
		t.Fatal("parseStatCPU accepted a short line")
	}
}

func TestParseMachineBusy(t *testing.T) {
	d, err := parseMachineBusy("cpu  61414 5 12742 323191 522 1 342 32 0 0")
	if err != nil || d != (61414+5+12742+1+342)*clockTick {
		t.Fatalf("parseMachineBusy = %s, %v", d, err)
	}
	if _, err := parseMachineBusy("cpu0 1 2 3"); err == nil {
		t.Fatal("parseMachineBusy accepted a short line")
	}
}

func TestPercentiles(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	p50, p90, p99, max := percentiles(lat)
	if p50 != 50*time.Millisecond || p90 != 90*time.Millisecond || p99 != 99*time.Millisecond || max != 100*time.Millisecond {
		t.Fatalf("percentiles = %s %s %s %s", p50, p90, p99, max)
	}
	if p50, _, _, _ := percentiles(nil); p50 != 0 {
		t.Fatal("percentiles of nothing")
	}
}

// TestClientAgainstServer checks the raw client against a real glow server: connect with a
// token, a call and its ack, the pushed lifecycle events, an unknown event, a refused token.
func TestClientAgainstServer(t *testing.T) {
	env := testserver.Start(t, testdb.Dialects(t)[0], nil)
	wsURL, err := socketURL(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := dialSIO(ctx, wsURL, env.Admin, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	args, err := c.Call(ctx, "profile.context", []byte(`{}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	status, body, err := decodeAck(args)
	if err != nil || status != http.StatusOK {
		t.Fatalf("profile.context: %d %s %v", status, body, err)
	}
	var pc struct {
		Profile struct{ Name string } `json:"profile"`
	}
	if err := json.Unmarshal(body, &pc); err != nil || pc.Profile.Name != "admin" {
		t.Fatalf("profile.context body: %s", body)
	}
	waitPushes := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for c.pushes.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := c.pushes.Load(); n != want {
			t.Fatalf("pushed events = %d, want %d (.started and .completed of every call of the profile)", n, want)
		}
	}
	waitPushes(2)
	// The same call over HTTP answers the same body, and the profile's socket hears of it.
	if res := env.Post(t, env.Admin, "/profile/context", `{}`); res.Status != 200 || !sameJSON(res.Body, body) {
		t.Fatalf("HTTP answered %d %s; socket.io %s", res.Status, res.Body, body)
	}
	waitPushes(4)

	// Several calls in flight on one socket, each matched to its own ack.
	errs := make(chan error, 16) // the server's default limit per socket
	for range 16 {
		go func() {
			args, err := c.Call(ctx, "system.health", []byte(`{}`), 10*time.Second)
			if err == nil {
				var s int
				if s, err = ackStatus(args); err == nil && s != 200 {
					err = statusError(s)
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent call: %v", err)
		}
	}

	args, err = c.Call(ctx, "persona.nope", []byte(`{}`), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := ackStatus(args); err != nil || s != http.StatusNotFound {
		t.Fatalf("unknown event: %d, %v", s, err)
	}

	_, err = dialSIO(ctx, wsURL, "glow_nope", 10*time.Second)
	var ce *connectError
	if !errors.As(err, &ce) || ce.Message != "unauthorized" {
		t.Fatalf("bad token: %v, want connect_error unauthorized", err)
	}

	c.Close()
	if _, err := c.Call(ctx, "profile.context", []byte(`{}`), time.Second); !errors.Is(err, errClosed) {
		t.Fatalf("call after close: %v", err)
	}
}
