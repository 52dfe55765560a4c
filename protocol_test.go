package netpoll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ccb70390/netpoll/internal/poller"
)

// protocolCase is a protocol and a few messages encoded with it by hand, so
// the tests do not trust the protocol's own Write to build their input.
type protocolCase struct {
	name     string
	protocol Protocol
	msgs     []string
	stream   string // msgs, framed
}

func protocolCases() []protocolCase {
	return []protocolCase{
		{
			name:     "length1",
			protocol: LengthPrefixed(1, binary.BigEndian, 255),
			msgs:     []string{"a", "", "hello world"},
			stream:   "\x01a\x00\x0bhello world",
		},
		{
			name:     "length2/big",
			protocol: LengthPrefixed(2, binary.BigEndian, 1024),
			msgs:     []string{"ping", "", "x"},
			stream:   "\x00\x04ping\x00\x00\x00\x01x",
		},
		{
			name:     "length4/little",
			protocol: LengthPrefixed(4, binary.LittleEndian, 1<<20),
			msgs:     []string{"abc", "defgh"},
			stream:   "\x03\x00\x00\x00abc\x05\x00\x00\x00defgh",
		},
		{
			name:     "lines",
			protocol: Delimited('\n', 64),
			msgs:     []string{"GET /", "", "a\rb"},
			stream:   "GET /\n\na\rb\n",
		},
		{
			name:     "nul",
			protocol: Delimited(0, 8),
			msgs:     []string{"12345678", "z"},
			stream:   "12345678\x00z\x00",
		},
	}
}

// frameChunks plays the event loop's framing over a LinkBuffer: each chunk
// arrives, then Read is called until the input is incomplete. It returns
// copies of the messages, the input left over, and the first hard error.
func frameChunks(t testing.TB, p Protocol, chunks [][]byte) (msgs [][]byte, left int, err error) {
	t.Helper()
	lb := NewLinkBuffer()
	defer lb.Close()
	r := &frameReader{src: lb}
	for _, chunk := range chunks {
		if _, err := lb.WriteBinary(append([]byte(nil), chunk...)); err != nil {
			t.Fatalf("WriteBinary: %v", err)
		}
		if err := lb.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for {
			r.off = 0
			msg, err := p.Read(r)
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				return msgs, lb.Len(), err
			}
			if r.off == 0 {
				t.Fatalf("Read returned %q without consuming input", msg)
			}
			msgs = append(msgs, append([]byte{}, msg...))
			if err := lb.Skip(r.off); err != nil {
				t.Fatalf("Skip(%d): %v", r.off, err)
			}
		}
		if err := lb.Release(); err != nil {
			t.Fatalf("Release: %v", err)
		}
	}
	return msgs, lb.Len(), nil
}

// frameCopy reads stream with the protocol's copying path (a plain
// io.Reader) until it fails; io.EOF at a message boundary is the clean end.
func frameCopy(p Protocol, stream []byte) (msgs [][]byte, err error) {
	r := bytes.NewReader(stream)
	for {
		msg, err := p.Read(struct{ io.Reader }{r})
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return msgs, err
		}
		msgs = append(msgs, msg)
	}
}

func joinMsgs(msgs [][]byte) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("%q", m)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func wantMsgs(msgs []string) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = fmt.Sprintf("%q", m)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestProtocolSplitEverywhere cuts each stream at every pair of byte
// boundaries and checks that the framing yields the same messages, never one
// early, and consumes everything.
func TestProtocolSplitEverywhere(t *testing.T) {
	for _, tt := range protocolCases() {
		t.Run(tt.name, func(t *testing.T) {
			stream := []byte(tt.stream)
			for i := 0; i <= len(stream); i++ {
				for j := i; j <= len(stream); j++ {
					chunks := [][]byte{stream[:i], stream[i:j], stream[j:]}
					msgs, left, err := frameChunks(t, tt.protocol, chunks)
					if got, want := joinMsgs(msgs), wantMsgs(tt.msgs); got != want || left != 0 || err != nil {
						t.Fatalf("split at %d,%d: messages %s, %d bytes left, %v; want %s, 0, <nil>", i, j, got, left, err, want)
					}
				}
			}
			// Byte by byte: no message may appear before its last byte.
			var chunks [][]byte
			for i := range stream {
				chunks = append(chunks, stream[i:i+1])
			}
			msgs, left, err := frameChunks(t, tt.protocol, chunks)
			if got, want := joinMsgs(msgs), wantMsgs(tt.msgs); got != want || left != 0 || err != nil {
				t.Fatalf("byte by byte: messages %s, %d bytes left, %v; want %s, 0, <nil>", got, left, err, want)
			}
			// The copying path agrees.
			copied, err := frameCopy(tt.protocol, stream)
			if got, want := joinMsgs(copied), wantMsgs(tt.msgs); got != want || err != nil {
				t.Fatalf("io.Reader path: messages %s, %v; want %s, <nil>", got, err, want)
			}
		})
	}
}

// TestProtocolWriteMatchesStream checks Write against the hand-made streams,
// on a netpoll Writer and on a plain io.Writer.
func TestProtocolWriteMatchesStream(t *testing.T) {
	for _, tt := range protocolCases() {
		t.Run(tt.name, func(t *testing.T) {
			lb := NewLinkBuffer()
			defer lb.Close()
			var plain bytes.Buffer
			for _, m := range tt.msgs {
				if err := tt.protocol.Write(linkWriter{lb}, []byte(m)); err != nil {
					t.Fatalf("Write(LinkBuffer, %q) = %v", m, err)
				}
				if err := tt.protocol.Write(&plain, []byte(m)); err != nil {
					t.Fatalf("Write(bytes.Buffer, %q) = %v", m, err)
				}
			}
			if err := lb.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := string(lb.Bytes()); got != tt.stream {
				t.Errorf("LinkBuffer holds %q; want %q", got, tt.stream)
			}
			if got := plain.String(); got != tt.stream {
				t.Errorf("bytes.Buffer holds %q; want %q", got, tt.stream)
			}
		})
	}
}

// linkWriter is a LinkBuffer that is also an io.Writer, as a Connection is,
// so a Protocol can be given it.
type linkWriter struct{ *LinkBuffer }

func (w linkWriter) Write(p []byte) (int, error) { return w.WriteBinary(p) }

// TestProtocolLimits checks that oversized frames fail with ErrFrameTooLarge
// on both paths and in Write, and that bad arguments are refused.
func TestProtocolLimits(t *testing.T) {
	tests := []struct {
		name     string
		protocol Protocol
		input    string
		reply    string
	}{
		{"length/claims 1GiB", LengthPrefixed(4, binary.BigEndian, 1024), "\x40\x00\x00\x00", strings.Repeat("r", 1025)},
		{"length/one over", LengthPrefixed(2, binary.BigEndian, 3), "\x00\x04abcd", "abcd"},
		{"lines/no newline", Delimited('\n', 4), "abcde", "abcde"},
		{"lines/long line", Delimited('\n', 4), "abcde\n", "abcdefgh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := frameChunks(t, tt.protocol, [][]byte{[]byte(tt.input)})
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("Read over the event loop's reader = %v; want ErrFrameTooLarge", err)
			}
			if _, err = frameCopy(tt.protocol, []byte(tt.input)); !errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("Read over io.Reader = %v; want ErrFrameTooLarge", err)
			}
			if err = tt.protocol.Write(io.Discard, []byte(tt.reply)); !errors.Is(err, ErrFrameTooLarge) {
				t.Errorf("Write(%d bytes) = %v; want ErrFrameTooLarge", len(tt.reply), err)
			}
		})
	}
	if err := Delimited('\n', 10).Write(io.Discard, []byte("a\nb")); !errors.Is(err, errDelimInMessage) {
		t.Errorf("Delimited Write with the delimiter inside = %v; want errDelimInMessage", err)
	}
	bad := []struct {
		name     string
		protocol Protocol
		want     error
	}{
		{"size 3", LengthPrefixed(3, binary.BigEndian, 10), errBadLengthPrefix},
		{"nil order", LengthPrefixed(2, nil, 10), errBadLengthPrefix},
		{"maxFrame 0", LengthPrefixed(2, binary.BigEndian, 0), errBadLengthPrefix},
		{"maxLine 0", Delimited('\n', 0), errBadDelimited},
	}
	for _, tt := range bad {
		t.Run("invalid/"+tt.name, func(t *testing.T) {
			if _, err := NewEventLoop(framedEcho, WithProtocol(tt.protocol)); !errors.Is(err, tt.want) {
				t.Errorf("NewEventLoop = %v; want %v", err, tt.want)
			}
			if _, err := tt.protocol.Read(strings.NewReader("\x00\x00\x00\x00\n")); !errors.Is(err, tt.want) {
				t.Errorf("Read = %v; want %v", err, tt.want)
			}
		})
	}
}

// TestProtocolZeroCopy checks that the ready-made framings hand out the input
// buffer's own memory, and allocate nothing per message.
func TestProtocolZeroCopy(t *testing.T) {
	for _, tt := range protocolCases() {
		t.Run(tt.name, func(t *testing.T) {
			lb := NewLinkBuffer()
			defer lb.Close()
			stream := bytes.Repeat([]byte(tt.stream), 8)
			if _, err := lb.WriteBinary(stream); err != nil {
				t.Fatal(err)
			}
			if err := lb.Flush(); err != nil {
				t.Fatal(err)
			}
			all, err := lb.Peek(lb.Len())
			if err != nil {
				t.Fatal(err)
			}
			r := &frameReader{src: lb}
			for range len(tt.msgs) * 8 {
				r.off = 0
				msg, err := tt.protocol.Read(r)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				if len(msg) > 0 && !within(msg, all) {
					t.Fatalf("message %q is a copy, not a slice of the input", msg)
				}
				if err := lb.Skip(r.off); err != nil {
					t.Fatal(err)
				}
			}
			if raceEnabled {
				return
			}
			lb2 := NewLinkBuffer()
			defer lb2.Close()
			r.src = lb2
			allocs := testing.AllocsPerRun(100, func() {
				_, _ = lb2.WriteString(tt.stream)
				_ = lb2.Flush()
				for range tt.msgs {
					r.off = 0
					if _, err := tt.protocol.Read(r); err != nil {
						panic(err)
					}
					_ = lb2.Skip(r.off)
				}
				_ = lb2.Release()
			})
			if allocs != 0 {
				t.Errorf("framing %d messages: %v allocations; want 0", len(tt.msgs), allocs)
			}
		})
	}
}

// within reports whether p lies inside the memory of all.
func within(p, all []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(all)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return at >= start && at+uintptr(len(p)) <= start+uintptr(len(all))
}

// framedEcho replies to each message with the message.
func framedEcho(ctx context.Context, c Connection) error {
	return WriteMessage(ctx, c, MessageFrom(ctx))
}

// startFramedServer serves a new listener with p and handler. Its channel
// yields each accepted server connection.
func startFramedServer(t testing.TB, p Protocol, handler OnRequest, opts ...Option) (Listener, <-chan Connection) {
	t.Helper()
	ln := newLocalListener(t, "tcp")
	accepted := make(chan Connection, 16)
	opts = append([]Option{WithProtocol(p), WithOnPrepare(func(c Connection) context.Context {
		select {
		case accepted <- c:
		default:
		}
		return context.Background()
	})}, opts...)
	startServer(t, ln, handler, opts...)
	return ln, accepted
}

// readReplies reads n framed replies from br with p.
func readReplies(t testing.TB, p Protocol, conn net.Conn, br *bufio.Reader, n int) []string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, n)
	for range n {
		msg, err := p.Read(br)
		if err != nil {
			t.Fatalf("reading reply %d of %d: %v (got %q)", len(got)+1, n, err, got)
		}
		got = append(got, string(msg))
	}
	return got
}

// TestProtocolEventLoopSplits sends each stream over a real socket cut at
// every byte boundary: the first part is sent and seen in the server's
// buffer before the rest goes, so the split is certain. Each message gets
// exactly one call and one reply.
func TestProtocolEventLoopSplits(t *testing.T) {
	for _, tt := range protocolCases() {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			ln, accepted := startFramedServer(t, tt.protocol, func(ctx context.Context, c Connection) error {
				calls.Add(1)
				return framedEcho(ctx, c)
			})
			conn := dialStd(t, ln)
			server := recvTimeout(t, accepted, 5*time.Second, "the server connection")
			br := bufio.NewReader(conn)
			stream := []byte(tt.stream)
			for k := 0; k <= len(stream); k++ {
				complete, used := prefixMessages(t, tt.protocol, stream[:k])
				if _, err := conn.Write(stream[:k]); err != nil {
					t.Fatal(err)
				}
				got := readReplies(t, tt.protocol, conn, br, complete)
				waitFor(t, 5*time.Second, fmt.Sprintf("%d partial bytes in the server's buffer", k-used), func() bool {
					return server.Reader().Len() == k-used
				})
				if _, err := conn.Write(stream[k:]); err != nil {
					t.Fatal(err)
				}
				got = append(got, readReplies(t, tt.protocol, conn, br, len(tt.msgs)-complete)...)
				if g, w := fmt.Sprintf("%q", got), fmt.Sprintf("%q", tt.msgs); g != w {
					t.Fatalf("split at %d: replies %s; want %s", k, g, w)
				}
			}
			if got, want := calls.Load(), int64(len(tt.msgs)*(len(stream)+1)); got != want {
				t.Errorf("OnRequest ran %d times; want %d (once per message)", got, want)
			}
		})
	}
}

// prefixMessages returns how many whole messages prefix holds and their
// length in bytes.
func prefixMessages(t testing.TB, p Protocol, prefix []byte) (n, used int) {
	t.Helper()
	lb := NewLinkBuffer()
	defer lb.Close()
	_, _ = lb.WriteBinary(append([]byte(nil), prefix...))
	_ = lb.Flush()
	r := &frameReader{src: lb}
	for {
		r.off = 0
		if _, err := p.Read(r); err != nil {
			return n, used
		}
		_ = lb.Skip(r.off)
		n++
		used += r.off
	}
}

// TestProtocolEventLoopByteByByte sends with a pause after every byte, as a
// slow peer does, and then many messages coalesced into one write.
func TestProtocolEventLoopByteByByte(t *testing.T) {
	for _, tt := range protocolCases()[:4] {
		t.Run(tt.name, func(t *testing.T) {
			ln, _ := startFramedServer(t, tt.protocol, framedEcho)
			conn := dialStd(t, ln)
			br := bufio.NewReader(conn)
			for i := range len(tt.stream) {
				if _, err := conn.Write([]byte(tt.stream[i : i+1])); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // let each byte go out as its own segment
			}
			if g, w := fmt.Sprintf("%q", readReplies(t, tt.protocol, conn, br, len(tt.msgs))), fmt.Sprintf("%q", tt.msgs); g != w {
				t.Fatalf("byte by byte: replies %s; want %s", g, w)
			}
			const copies = 1000
			if _, err := conn.Write([]byte(strings.Repeat(tt.stream, copies))); err != nil {
				t.Fatal(err)
			}
			got := readReplies(t, tt.protocol, conn, br, copies*len(tt.msgs))
			for i, m := range got {
				if want := tt.msgs[i%len(tt.msgs)]; m != want {
					t.Fatalf("coalesced: reply %d = %q; want %q", i, m, want)
				}
			}
		})
	}
}

// fixedFour is a user protocol written against plain io.Reader calls: every
// message is 4 bytes. io.ReadFull meets ErrIncomplete half way; the event
// loop must then retry from the start of the message.
type fixedFour struct{}

func (fixedFour) Read(r io.Reader) ([]byte, error) {
	msg := make([]byte, 4)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func (fixedFour) Write(w io.Writer, msg []byte) error {
	_, err := w.Write(msg)
	return err
}

func TestProtocolUserIOReader(t *testing.T) {
	ln, _ := startFramedServer(t, fixedFour{}, framedEcho)
	conn := dialStd(t, ln)
	br := bufio.NewReader(conn)
	for _, part := range []string{"ab", "cdef", "g", "h", "ijkl"} {
		if _, err := conn.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // keep the parts in separate segments
	}
	got := readReplies(t, fixedFour{}, conn, br, 3)
	if g := strings.Join(got, ","); g != "abcd,efgh,ijkl" {
		t.Errorf("replies %q; want abcd,efgh,ijkl", g)
	}
}

// TestProtocolEventLoopOversize checks that a peer announcing a huge frame,
// or sending a line past the limit, is disconnected at once.
func TestProtocolEventLoopOversize(t *testing.T) {
	tests := []struct {
		name     string
		protocol Protocol
		input    string
		opts     []Option
	}{
		{"length", LengthPrefixed(4, binary.BigEndian, 1024), "\x7f\xff\xff\xff", nil},
		{"lines", Delimited('\n', 16), strings.Repeat("x", 17), nil},
		// A frame the protocol allows but the input limit cannot hold
		// would stall with reading paused; it must fail instead.
		{"over the input limit", LengthPrefixed(4, binary.BigEndian, 1<<20),
			"\x00\x00\x40\x00" + strings.Repeat("y", 16<<10), []Option{WithMaxInputBuffer(4 << 10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts != nil && pollers.Engine() == poller.EngineIOURing {
				// Engine-specific: the io_uring engine's multishot receive
				// takes all 16 KiB off the socket before the pause at the
				// limit cancels it, so the frame arrives whole and is served.
				t.Skip("epoll engine only: io_uring receives past the input limit what had arrived before the pause")
			}
			var calls atomic.Int64
			ln, _ := startFramedServer(t, tt.protocol, func(ctx context.Context, c Connection) error {
				calls.Add(1)
				return nil
			}, tt.opts...)
			conn := dialStd(t, ln)
			if _, err := conn.Write([]byte(tt.input)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(make([]byte, 1))
			if n != 0 || (err != io.EOF && !errors.Is(err, syscall.ECONNRESET)) {
				t.Errorf("client Read = %d, %v; want 0, EOF (the server closed)", n, err)
			}
			if calls.Load() != 0 {
				t.Errorf("OnRequest ran %d times; want 0", calls.Load())
			}
		})
	}
}

func TestMessageOutsideFraming(t *testing.T) {
	ctx := context.Background()
	if msg := MessageFrom(ctx); msg != nil {
		t.Errorf("MessageFrom(Background) = %q; want nil", msg)
	}
	if err := WriteMessage(ctx, nil, []byte("x")); !errors.Is(err, errNoProtocol) {
		t.Errorf("WriteMessage(Background) = %v; want errNoProtocol", err)
	}
	m := &messageContext{Context: ctx, msg: []byte("m"), protocol: Delimited('\n', 8)}
	derived, cancel := context.WithCancel(m)
	defer cancel()
	if got := MessageFrom(derived); string(got) != "m" {
		t.Errorf("MessageFrom(derived context) = %q; want \"m\"", got)
	}
}
