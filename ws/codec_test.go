package ws

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// decodeWith feeds text to a decoder and returns what it decoded, or the error.
func decodeWith(d parser.Decoder, text string) (*parser.Packet, error) {
	var got *parser.Packet
	_ = d.On("decoded", func(args ...any) { got, _ = args[0].(*parser.Packet) })
	err := d.Add(text)
	return got, err
}

// plainArgs turns a packet's arguments into plain JSON values, whether they were decoded
// into values (the library) or kept as JSON text (glow's decoder).
func plainArgs(t *testing.T, p *parser.Packet) any {
	b, err := json.Marshal(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// glow's decoder reads every packet as the library's does: the same verdict, the same
// namespace, id and arguments; and the events it reads itself carry their arguments as JSON
// text, the bytes the dispatcher is given.
func TestDecoderAgreesWithTheLibrarys(t *testing.T) {
	for _, text := range []string{
		`2["persona.search",{"search":"x","page_size":5}]`,
		`212["profile.context",{}]`,
		`2/admin,7["a",[1,2],"b",null]`,
		`2["a","{\"json\":\"text\"}"]`,
		`2[ "spaced" , { "k" : [ 1 , 2 ] } ]`,
		`2["\u00e9v\u00e9nement",1.5e3]`,
		`2[1,2]`, `2["disconnect"]`, `2[]`, `2`, `2{}`, `2["a"`, `2["a"]trailing`, `299999999999999999999999["a"]`,
		`0{"token":"t"}`, `1`, `3[1]`, `21-["a",{"_placeholder":true,"num":0}]`,
	} {
		want, wantErr := decodeWith(parser.NewDecoder(), text)
		got, gotErr := decodeWith(newCodec().NewDecoder(), text)
		if (wantErr == nil) != (gotErr == nil) || (want == nil) != (got == nil) {
			t.Errorf("%s: library %v, %v; glow %v, %v", text, want, wantErr, got, gotErr)
			continue
		}
		if want == nil {
			continue
		}
		if want.Type != got.Type || want.Nsp != got.Nsp || !reflect.DeepEqual(want.Id, got.Id) ||
			!reflect.DeepEqual(plainArgs(t, want), plainArgs(t, got)) {
			t.Errorf("%s: library %+v, glow %+v", text, want, got)
		}
	}
	p, _ := decodeWith(newCodec().NewDecoder(), `21["persona.create", {"name": "x"} ]`)
	args, _ := p.Data.([]any)
	if len(args) != 2 || args[0] != "persona.create" {
		t.Fatalf("args %#v", p.Data)
	}
	if raw, ok := args[1].(json.RawMessage); !ok || string(raw) != `{"name": "x"}` {
		t.Fatalf("the body is %#v, not its JSON text", args[1])
	}
}

// A binary event's attachment goes to the library's decoder, which puts the event together;
// a text packet in the middle of one is refused, as the library refuses it.
func TestDecoderLeavesBinaryEventsToTheLibrary(t *testing.T) {
	d := newCodec().NewDecoder()
	var got []*parser.Packet
	_ = d.On("decoded", func(args ...any) { got = append(got, args[0].(*parser.Packet)) })
	if err := d.Add(`51-["upload",{"_placeholder":true,"num":0}]`); err != nil {
		t.Fatal(err)
	}
	if err := d.Add(`2["text",{}]`); err == nil {
		t.Fatal("a text packet between a binary event and its attachment was taken")
	}
	d = newCodec().NewDecoder()
	_ = d.On("decoded", func(args ...any) { got = append(got, args[0].(*parser.Packet)) })
	if err := d.Add(`51-["upload",{"_placeholder":true,"num":0}]`); err != nil {
		t.Fatal(err)
	}
	if err := d.Add([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := d.Add(`2["after",{}]`); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Data.([]any)[0] != "after" {
		t.Fatalf("decoded %v", got)
	}
}

// glow's encoder writes what the library's writes, byte for byte, for the packets it takes
// (events with JSON payloads, acks with a spliced body), and leaves the rest to it.
func TestEncoderWritesWhatTheLibraryWrites(t *testing.T) {
	type envelope struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	id := uint64(42)
	body := json.RawMessage(`{"status":"ok","n":[1,2]}`)
	for _, c := range []struct {
		glow, library *parser.Packet
	}{
		{&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"persona.create.completed", body, "1a"}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"persona.create.completed", body, "1a"}}},
		{&parser.Packet{Type: parser.ACK, Nsp: "/", Id: &id, Data: []any{ackBody{status: 201, body: body}}},
			&parser.Packet{Type: parser.ACK, Nsp: "/", Id: &id, Data: []any{envelope{201, body}}}},
		{&parser.Packet{Type: parser.ACK, Nsp: "/admin", Id: &id, Data: []any{ackBody{status: 204}}},
			&parser.Packet{Type: parser.ACK, Nsp: "/admin", Id: &id, Data: []any{envelope{204, nil}}}},
		{&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"naïve \"quoted\"", body}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"naïve \"quoted\"", body}}},
		{&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"n", 1, map[string]any{"a": true}}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"n", 1, map[string]any{"a": true}}}},
		{&parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"sid": "x"}},
			&parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"sid": "x"}}},
	} {
		got := newCodec().NewEncoder().Encode(c.glow)
		want := parser.NewEncoder().Encode(c.library)
		if len(got) != 1 || len(want) != 1 || got[0].String() != want[0].String() {
			t.Errorf("glow wrote %v, the library %v", got, want)
		}
	}
}
