package api

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// frame builds a WebSocket frame, masked as a client's are.
func frame(opcode byte, payload []byte, masked bool) []byte {
	var b bytes.Buffer
	b.WriteByte(0x80 | opcode)
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b.WriteByte(m | byte(n))
	case n < 1<<16:
		b.WriteByte(m | 126)
		binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(m | 127)
		binary.Write(&b, binary.BigEndian, uint64(n))
	}
	if masked {
		b.Write([]byte{1, 2, 3, 4})
	}
	b.Write(payload)
	return b.Bytes()
}

func TestFrameScanner(t *testing.T) {
	t.Parallel()
	handshake := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	big := bytes.Repeat([]byte("x"), 70000)
	tests := []struct {
		name   string
		stream [][]byte // as the reads deliver it
		want   []bool
	}{
		{"ping only", [][]byte{handshake, frame(0x9, []byte("hi"), false)}, []bool{false, false}},
		{"pong from client", [][]byte{handshake, frame(0xa, nil, true)}, []bool{false, false}},
		{"text", [][]byte{handshake, frame(0x1, []byte(`{"msg":1}`), true)}, []bool{false, true}},
		{"handshake and frame together", [][]byte{append(append([]byte{}, handshake...), frame(0x1, []byte("a"), false)...)}, []bool{true}},
		{"handshake split at its end", [][]byte{handshake[:len(handshake)-2], handshake[len(handshake)-2:], frame(0x9, nil, false)}, []bool{false, false, false}},
		{"header split byte by byte", func() [][]byte {
			f := frame(0x2, big, true)
			out := [][]byte{handshake}
			for _, b := range f[:14] {
				out = append(out, []byte{b})
			}
			return append(out, f[14:])
		}(), append([]bool{false}, append(make([]bool, 13), true, false)...)[:16]},
		{"payload with ping-looking bytes, then ping", [][]byte{handshake, frame(0x1, []byte{0x89, 0x00}, false), frame(0x9, nil, false)}, []bool{false, true, false}},
		{"long binary then pong", [][]byte{handshake, frame(0x2, big, false)[:1000], frame(0x2, big, false)[1000:], frame(0xa, nil, false)}, []bool{false, true, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frameScanner{skipHTTP: true}
			for i, chunk := range tt.stream {
				if got := f.scan(chunk); got != tt.want[i] {
					t.Fatalf("chunk %d: data = %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}
