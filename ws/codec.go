package ws

// glow's socket.io parser: the library's, with a short way for the packets glow sends and
// receives most. An event glow pushes is JSON already (its payload, built once by the event
// log), and so is an ack's body (the handler's answer): the encoder writes those bytes into
// the packet as they are, instead of marshalling them again through reflection (which also
// re-validates and compacts every json.RawMessage). An event a client sends is kept as the
// JSON text of its arguments, which is what the dispatcher reads, instead of being decoded
// into maps and marshalled back. Every other packet — CONNECT, DISCONNECT, binary packets,
// events named by a number, anything the short way does not take — goes to the library's
// own encoder and decoder, which also rule on every malformed packet.

import (
	"encoding/json"
	"strconv"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// codec is the parser.Parser of glow's server (ServerOptions.SetParser).
type codec struct{ lib parser.Parser }

func newCodec() parser.Parser { return codec{lib: parser.NewParser()} }

func (c codec) NewEncoder() parser.Encoder { return encoder{lib: c.lib.NewEncoder()} }

func (c codec) NewDecoder() parser.Decoder {
	d := &decoder{EventEmitter: types.NewEventEmitter(), lib: c.lib.NewDecoder()}
	// What the library's decoder decodes is passed on; a binary packet it was putting
	// together is then complete.
	_ = d.lib.On("decoded", func(args ...any) {
		d.assembling = false
		d.Emit("decoded", args...)
	})
	return d
}

// ackBody is an ack's one argument, {"status": <HTTP status>, "body": <HTTP body>}, with
// the body as the handler's JSON. The encoder splices it; anything else marshals it.
type ackBody struct {
	status int
	body   json.RawMessage
}

func (a ackBody) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = strconv.AppendInt(b, int64(a.status), 10)
	b = append(b, `,"body":`...)
	if len(a.body) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, a.body...)
	}
	return append(b, '}')
}

func (a ackBody) MarshalJSON() ([]byte, error) { return a.appendJSON(nil), nil }

// encoder writes EVENT and ACK packets whose arguments are all strings, json.RawMessage
// or ackBody itself; it leaves the others to the library's encoder.
type encoder struct{ lib parser.Encoder }

func (e encoder) Encode(p *parser.Packet) []types.BufferInterface {
	args, ok := p.Data.([]any)
	if !ok || (p.Type != parser.EVENT && p.Type != parser.ACK) {
		return e.lib.Encode(p)
	}
	size := 24 + len(p.Nsp)
	for _, arg := range args {
		switch v := arg.(type) {
		case string:
			if !plainString(v) {
				return e.lib.Encode(p)
			}
			size += len(v) + 3
		case json.RawMessage:
			if len(v) == 0 {
				return e.lib.Encode(p)
			}
			size += len(v) + 1
		case ackBody:
			size += len(v.body) + 32
		default:
			return e.lib.Encode(p)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, byte(p.Type)+'0')
	if p.Nsp != "" && p.Nsp != "/" {
		b = append(b, p.Nsp...)
		b = append(b, ',')
	}
	if p.Id != nil {
		b = strconv.AppendUint(b, *p.Id, 10)
	}
	b = append(b, '[')
	for i, arg := range args {
		if i > 0 {
			b = append(b, ',')
		}
		switch v := arg.(type) {
		case string:
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		case json.RawMessage:
			b = append(b, v...)
		case ackBody:
			b = v.appendJSON(b)
		}
	}
	b = append(b, ']')
	return []types.BufferInterface{types.NewStringBuffer(b)}
}

// plainString says whether s is its own JSON string body: printable ASCII without quotes
// or backslashes, as event names and recovery offsets are.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// decoder reads a client's EVENT packets, "2[/nsp,][id][name, args…]", into the event name
// and the JSON text of each argument; every other packet, and every EVENT it cannot read
// so, goes to the library's decoder.
type decoder struct {
	types.EventEmitter
	lib parser.Decoder
	// assembling is set while the library's decoder puts a binary packet together from the
	// attachments that follow it: text packets then go to it too (it refuses them).
	assembling bool
}

func (d *decoder) Add(data any) error {
	if !d.assembling {
		var text []byte
		switch v := data.(type) {
		case string:
			text = []byte(v)
		case *types.StringBuffer:
			text = v.Bytes()
		}
		if p := readEvent(text); p != nil {
			d.Emit("decoded", p)
			return nil
		}
		if len(text) > 0 && (text[0] == '0'+byte(parser.BINARY_EVENT) || text[0] == '0'+byte(parser.BINARY_ACK)) {
			d.assembling = true
		}
	}
	err := d.lib.Add(data)
	if err != nil {
		d.assembling = false
	}
	return err
}

func (d *decoder) Destroy() { d.lib.Destroy() }

// The library's limits on a packet's namespace and id.
const (
	maxNamespaceBytes = parser.DefaultMaxNamespaceLength
	maxIDDigits       = parser.DefaultMaxPacketIDLength
)

// readEvent reads an EVENT packet named by a string, with its arguments as JSON text; nil
// when text is anything else, or anything the library may judge otherwise.
func readEvent(text []byte) *parser.Packet {
	if len(text) < 3 || text[0] != '0'+byte(parser.EVENT) {
		return nil
	}
	rest := text[1:]
	p := &parser.Packet{Type: parser.EVENT, Nsp: "/"}
	if rest[0] == '/' {
		end := -1
		for i := 0; i < len(rest) && i <= maxNamespaceBytes; i++ {
			if rest[i] == ',' {
				end = i
				break
			}
		}
		if end < 0 {
			return nil
		}
		p.Nsp, rest = string(rest[:end]), rest[end+1:]
	}
	digits := 0
	for digits < len(rest) && rest[digits] >= '0' && rest[digits] <= '9' {
		digits++
	}
	if digits > 0 {
		if digits > maxIDDigits {
			return nil
		}
		id, err := strconv.ParseUint(string(rest[:digits]), 10, 64)
		if err != nil {
			return nil
		}
		p.Id, rest = &id, rest[digits:]
	}
	var raw []json.RawMessage
	if len(rest) == 0 || rest[0] != '[' || json.Unmarshal(rest, &raw) != nil || len(raw) == 0 {
		return nil
	}
	var name string
	if raw[0][0] != '"' || json.Unmarshal(raw[0], &name) != nil || parser.ReservedEvents.Has(name) {
		return nil
	}
	args := make([]any, len(raw))
	args[0] = name
	for i, r := range raw[1:] {
		args[i+1] = r
	}
	p.Data = args
	return p
}
