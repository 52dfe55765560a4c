package netpoll

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// withNodeSize sets LinkBufferCap for one test, so small writes span nodes.
func withNodeSize(tb testing.TB, size int) {
	tb.Helper()
	old := LinkBufferCap
	LinkBufferCap = size
	tb.Cleanup(func() { LinkBufferCap = old })
}

// trackPool turns bufpool's Held counter on until tb ends.
func trackPool(tb testing.TB) {
	tb.Cleanup(bufpool.Track())
}

// checkPoolBalance fails tb if, when it ends, bufpool holds a different
// number of bytes out than at the call. Tests using it must not run in
// parallel with others touching buffers.
func checkPoolBalance(tb testing.TB) {
	tb.Helper()
	trackPool(tb)
	start := bufpool.Held()
	tb.Cleanup(func() {
		if got := bufpool.Held(); got != start {
			tb.Errorf("bufpool holds %d bytes out at the end; want %d as at the start", got, start)
		}
	})
}

// writeFlush writes s with WriteString and flushes.
func writeFlush(tb testing.TB, b *LinkBuffer, s string) {
	tb.Helper()
	if _, err := b.WriteString(s); err != nil {
		tb.Fatalf("WriteString(%q) = %v", s, err)
	}
	if err := b.Flush(); err != nil {
		tb.Fatalf("Flush() = %v", err)
	}
}

// chunked returns a buffer holding each piece in a node of its own, flushed.
func chunked(tb testing.TB, pieces ...string) *LinkBuffer {
	tb.Helper()
	b := NewLinkBuffer()
	for _, p := range pieces {
		piece := NewLinkBuffer()
		piece.WriteString(p)
		if err := b.WriteBuffer(piece); err != nil {
			tb.Fatalf("WriteBuffer = %v", err)
		}
	}
	if err := b.Flush(); err != nil {
		tb.Fatalf("Flush() = %v", err)
	}
	return b
}

func TestLinkBufferReads(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
	}{
		{"one node", []string{"hello, world"}},
		{"across nodes", []string{"hel", "lo, ", "wor", "ld"}},
		{"empty nodes between", []string{"hello", "", ", world"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPoolBalance(t)
			b := chunked(t, tt.pieces...)
			defer b.Close()
			if got, want := b.Len(), 12; got != want {
				t.Fatalf("Len() = %d; want %d", got, want)
			}
			if p, err := b.Peek(5); string(p) != "hello" || err != nil {
				t.Fatalf("Peek(5) = %q, %v; want \"hello\", <nil>", p, err)
			}
			if p, err := b.Next(7); string(p) != "hello, " || err != nil {
				t.Fatalf("Next(7) = %q, %v; want \"hello, \", <nil>", p, err)
			}
			if c, err := b.ReadByte(); c != 'w' || err != nil {
				t.Fatalf("ReadByte() = %q, %v; want 'w', <nil>", c, err)
			}
			if err := b.Skip(1); err != nil {
				t.Fatalf("Skip(1) = %v", err)
			}
			if s, err := b.ReadString(2); s != "rl" || err != nil {
				t.Fatalf("ReadString(2) = %q, %v; want \"rl\", <nil>", s, err)
			}
			if p, err := b.ReadBinary(1); string(p) != "d" || err != nil {
				t.Fatalf("ReadBinary(1) = %q, %v; want \"d\", <nil>", p, err)
			}
			if !b.IsEmpty() {
				t.Fatalf("IsEmpty() = false after reading everything; want true")
			}
			if err := b.Release(); err != nil {
				t.Fatalf("Release() = %v", err)
			}
		})
	}
}

func TestLinkBufferErrors(t *testing.T) {
	b := NewLinkBuffer()
	defer b.Close()
	writeFlush(t, b, "abc")
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"Next beyond Len", func() error { _, err := b.Next(4); return err }, errLinkBufferShort},
		{"Peek beyond Len", func() error { _, err := b.Peek(4); return err }, errLinkBufferShort},
		{"Skip beyond Len", func() error { return b.Skip(4) }, errLinkBufferShort},
		{"ReadBinary beyond Len", func() error { _, err := b.ReadBinary(9); return err }, errLinkBufferShort},
		{"ReadString beyond Len", func() error { _, err := b.ReadString(9); return err }, errLinkBufferShort},
		{"Slice beyond Len", func() error { _, err := b.Slice(4); return err }, errLinkBufferShort},
		{"Next negative", func() error { _, err := b.Next(-1); return err }, errLinkBufferNegative},
		{"Malloc negative", func() error { _, err := b.Malloc(-1); return err }, errLinkBufferNegative},
		{"MallocAck beyond written", func() error { return b.MallocAck(1) }, errLinkBufferMisuse},
		{"WriteDirect beyond Malloc", func() error { return b.WriteDirect([]byte("x"), 1) }, errLinkBufferMisuse},
		{"Until without delim", func() error { _, err := b.Until('z'); return err }, errLinkBufferNoDelim},
		{"Append foreign Writer", func() error { return b.Append(NewWriter(io.Discard).(*zcWriter).wrapped()) }, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want one matching %v", err, tt.want)
			}
		})
	}
	if p, err := b.Next(3); string(p) != "abc" || err != nil {
		t.Fatalf("Next(3) after failed calls = %q, %v; want \"abc\", <nil>", p, err)
	}
}

// wrapped hides the concrete type of z, so Append sees a foreign Writer.
func (z *zcWriter) wrapped() Writer {
	return struct{ Writer }{z}
}

func TestLinkBufferClosed(t *testing.T) {
	checkPoolBalance(t)
	b := NewLinkBuffer()
	writeFlush(t, b, "abc")
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close() = %v; want <nil>", err)
	}
	calls := map[string]func() error{
		"Next":    func() error { _, err := b.Next(1); return err },
		"Until":   func() error { _, err := b.Until('a'); return err },
		"Release": b.Release,
		"Malloc":  func() error { _, err := b.Malloc(1); return err },
		"Write":   func() error { _, err := b.WriteString("x"); return err },
		"Flush":   b.Flush,
		"Append":  func() error { return b.Append(NewLinkBuffer()) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrConnClosed) {
			t.Errorf("%s after Close = %v; want one matching ErrConnClosed", name, err)
		}
	}
	if b.Len() != 0 || b.indexByte('a', 0) != -1 || len(b.GetBytes(nil)) != 0 || b.book(8, 8) != nil {
		t.Errorf("closed buffer still shows content")
	}
}

func TestLinkBufferUntil(t *testing.T) {
	b := chunked(t, "GET / HT", "TP/1.1\r", "\nHost: x\r\n")
	defer b.Close()
	for _, want := range []string{"GET / HTTP/1.1\r\n", "Host: x\r\n"} {
		if line, err := b.Until('\n'); string(line) != want || err != nil {
			t.Fatalf("Until('\\n') = %q, %v; want %q, <nil>", line, err, want)
		}
	}
}

func TestLinkBufferIndexByte(t *testing.T) {
	b := chunked(t, "ab", "", "cdab", "e")
	defer b.Close()
	tests := []struct {
		c    byte
		skip int
		want int
	}{
		{'a', 0, 0}, {'a', 1, 4}, {'b', 2, 5}, {'e', 0, 6}, {'e', 6, 6},
		{'e', 7, -1}, {'z', 0, -1}, {'a', -1, -1}, {'c', 3, -1},
	}
	for _, tt := range tests {
		if got := b.indexByte(tt.c, tt.skip); got != tt.want {
			t.Errorf("indexByte(%q, %d) = %d; want %d", tt.c, tt.skip, got, tt.want)
		}
	}
	if !raceEnabled {
		if allocs := testing.AllocsPerRun(100, func() { b.indexByte('e', 1) }); allocs != 0 {
			t.Errorf("indexByte allocates %v times; want 0", allocs)
		}
	}
}

func TestLinkBufferMallocAckAndLen(t *testing.T) {
	withNodeSize(t, 64)
	checkPoolBalance(t)
	b := NewLinkBuffer()
	defer b.Close()
	p, _ := b.Malloc(40)
	copy(p, strings.Repeat("a", 40))
	p, _ = b.Malloc(100) // does not fit: a second node
	copy(p, strings.Repeat("b", 100))
	if got := b.MallocLen(); got != 140 {
		t.Fatalf("MallocLen() = %d; want 140", got)
	}
	if b.Len() != 0 {
		t.Fatalf("Len() = %d before Flush; want 0", b.Len())
	}
	if err := b.MallocAck(45); err != nil {
		t.Fatalf("MallocAck(45) = %v", err)
	}
	b.WriteString("c")
	b.Flush()
	want := strings.Repeat("a", 40) + "bbbbbc"
	if got := string(b.Bytes()); got != want {
		t.Fatalf("Bytes() = %q; want %q", got, want)
	}
}

func TestLinkBufferWriteDirect(t *testing.T) {
	checkPoolBalance(t)
	b := NewLinkBuffer()
	defer b.Close()
	head, _ := b.Malloc(8)
	copy(head, "headtail")
	payload := []byte("MIDDLE")
	if err := b.WriteDirect(payload, 4); err != nil {
		t.Fatalf("WriteDirect = %v", err)
	}
	if got := b.MallocLen(); got != 14 {
		t.Fatalf("MallocLen() = %d; want 14", got)
	}
	b.WriteString("!")
	b.Flush()
	if got := string(b.Bytes()); got != "headMIDDLEtail!" {
		t.Fatalf("Bytes() = %q; want \"headMIDDLEtail!\"", got)
	}
	segs := b.GetBytes(nil)
	if len(segs) != 3 || unsafe.SliceData(segs[1]) != unsafe.SliceData(payload) {
		t.Fatalf("GetBytes() = %q; want 3 segments, the middle one aliasing the payload", segs)
	}
}

func TestLinkBufferWriteBinary(t *testing.T) {
	checkPoolBalance(t)
	small := bytes.Repeat([]byte{'s'}, BinaryInplaceThreshold-1)
	large := bytes.Repeat([]byte{'L'}, BinaryInplaceThreshold)
	held := bufpool.Held()
	b := NewLinkBuffer()
	defer b.Close()
	b.WriteBinary(large)
	if got := bufpool.Held(); got != held {
		t.Fatalf("a large WriteBinary took %d pooled bytes; want 0", got-held)
	}
	b.WriteBinary(small)
	b.Flush()
	p, _ := b.Next(len(large))
	if unsafe.SliceData(p) != unsafe.SliceData(large) {
		t.Fatalf("Next after a large WriteBinary returned a copy; want the caller's memory")
	}
	p, _ = b.Next(len(small))
	if unsafe.SliceData(p) == unsafe.SliceData(small) || !bytes.Equal(p, small) {
		t.Fatalf("Next after a small WriteBinary: want an equal copy")
	}
}

func TestLinkBufferBytesGetBytes(t *testing.T) {
	b := chunked(t, "ab", "cd", "e")
	defer b.Close()
	if got := string(b.Bytes()); got != "abcde" {
		t.Fatalf("Bytes() = %q; want \"abcde\"", got)
	}
	two := b.GetBytes(make([][]byte, 2))
	if len(two) != 2 || string(two[0]) != "ab" || string(two[1]) != "cd" {
		t.Fatalf("GetBytes(2 slots) = %q; want [ab cd]", two)
	}
	b.Skip(1)
	all := b.GetBytes(nil)
	if got := string(bytes.Join(all, nil)); got != "bcde" || len(all) != 3 {
		t.Fatalf("GetBytes(nil) = %q; want [b cd e]", all)
	}
	if b.Len() != 4 {
		t.Fatalf("Len() = %d after GetBytes; want 4 (nothing consumed)", b.Len())
	}
}

func TestLinkBufferSliceOutlivesRelease(t *testing.T) {
	withNodeSize(t, 64)
	checkPoolBalance(t)
	b := NewLinkBuffer()
	writeFlush(t, b, strings.Repeat("x", 50)+strings.Repeat("y", 50))
	b.Skip(40)
	r, err := b.Slice(30)
	if err != nil {
		t.Fatalf("Slice(30) = %v", err)
	}
	s := r.(*LinkBuffer)
	held := bufpool.Held()
	b.Release()
	b.Skip(b.Len())
	b.Release()
	b.Close()
	if got := bufpool.Held(); got != held {
		t.Fatalf("closing the origin freed %d bytes the slice still uses", held-got)
	}
	if got, want := string(s.Bytes()), strings.Repeat("x", 10)+strings.Repeat("y", 20); got != want {
		t.Fatalf("slice after origin Close = %q; want %q", got, want)
	}
	s.Skip(s.Len())
	s.Release()
	if got := bufpool.Held(); got >= held {
		t.Fatalf("the slice's last Release freed nothing (held %d, was %d)", got, held)
	}
}

func TestLinkBufferAppend(t *testing.T) {
	withNodeSize(t, 64)
	checkPoolBalance(t)
	out := NewLinkBuffer()
	defer out.Close()
	out.WriteString("<")
	in := NewLinkBuffer()
	writeFlush(t, in, "skip-me|flushed|")
	in.Skip(8)
	in.WriteString("unflushed")
	if err := out.Append(in); err != nil {
		t.Fatalf("Append = %v", err)
	}
	if got := out.MallocLen(); got != 1+8+9 {
		t.Fatalf("MallocLen() after Append = %d; want 18", got)
	}
	if _, err := in.Next(1); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("using the appended buffer: %v; want an error matching ErrConnClosed", err)
	}
	src := NewLinkBuffer()
	writeFlush(t, src, "[slice]")
	sl, _ := src.Slice(7)
	src.Close()
	if err := out.WriteBuffer(sl.(*LinkBuffer)); err != nil {
		t.Fatalf("WriteBuffer(slice) = %v", err)
	}
	out.WriteString(">")
	out.Flush()
	if got, want := string(out.Bytes()), "<flushed|unflushed[slice]>"; got != want {
		t.Fatalf("Bytes() = %q; want %q", got, want)
	}
}

func TestLinkBufferBook(t *testing.T) {
	checkPoolBalance(t)
	b := NewLinkBuffer()
	defer b.Close()
	p := b.book(100, 1000)
	if len(p) < 100 || len(p) > 1000 {
		t.Fatalf("book(100, 1000) gave %d bytes; want 100..1000", len(p))
	}
	copy(p, "hello")
	if b.Len() != 0 {
		t.Fatalf("Len() = %d before bookAck; want 0", b.Len())
	}
	if n, err := b.bookAck(5); n != 5 || err != nil {
		t.Fatalf("bookAck(5) = %d, %v; want 5, <nil>", n, err)
	}
	p = b.book(10, 8)
	if len(p) < 8 || len(p) > 8 {
		t.Fatalf("book(10, 8) gave %d bytes; want 8", len(p))
	}
	copy(p, " world!!")
	if n, err := b.bookAck(6); n != 11 || err != nil {
		t.Fatalf("bookAck(6) = %d, %v; want 11, <nil>", n, err)
	}
	if _, err := b.bookAck(1); !errors.Is(err, errLinkBufferMisuse) {
		t.Fatalf("bookAck without book = %v; want errLinkBufferMisuse", err)
	}
	if got := string(b.Bytes()); got != "hello world" {
		t.Fatalf("Bytes() = %q; want \"hello world\"", got)
	}
	// A book that receives nothing leaves no memory behind.
	b.Skip(b.Len())
	b.Release()
	held := bufpool.Held()
	b.book(4096, 4096)
	b.bookAck(0)
	if got := bufpool.Held(); got != held {
		t.Fatalf("bookAck(0) kept %d bytes; want 0", got-held)
	}
}

// heldNodes names the node pointers b still holds, or returns "" when it
// holds none, as an empty buffer must not.
func heldNodes(b *LinkBuffer) string {
	var held []string
	for _, f := range []struct {
		name string
		n    *linkBufferNode
	}{{"head", b.head}, {"read", b.read}, {"flush", b.flush}, {"tails[0]", b.tails[0]}, {"tails[1]", b.tails[1]}} {
		if f.n != nil {
			held = append(held, f.name)
		}
	}
	if b.scratch != nil {
		held = append(held, "scratch")
	}
	return strings.Join(held, ", ")
}

// TestLinkBufferEmptyHoldsNoNode pins that a buffer with nothing to read
// and an idle writer keeps no node, whichever way it got empty: every
// connection owns two buffers, so an idle one must cost its struct only.
func TestLinkBufferEmptyHoldsNoNode(t *testing.T) {
	tests := []struct {
		name string
		play func(tb testing.TB, b *LinkBuffer)
	}{
		{"new", func(testing.TB, *LinkBuffer) {}},
		{"read and released", func(tb testing.TB, b *LinkBuffer) {
			writeFlush(tb, b, "hello")
			b.Next(5)
			b.Release()
		}},
		{"read and released twice", func(tb testing.TB, b *LinkBuffer) {
			// The second cycle runs on the writer's other tail slot.
			for range 2 {
				writeFlush(tb, b, "hello")
				b.Next(5)
				b.Release()
			}
		}},
		{"read in two releases", func(tb testing.TB, b *LinkBuffer) {
			writeFlush(tb, b, "hello")
			b.Next(2)
			b.Release()
			b.Next(3)
			b.Release()
		}},
		{"spanning read", func(tb testing.TB, b *LinkBuffer) {
			withNodeSize(tb, 64)
			writeFlush(tb, b, strings.Repeat("x", 100))
			b.Next(100) // copied into scratch
			b.Release()
		}},
		{"large WriteBinary", func(tb testing.TB, b *LinkBuffer) {
			b.WriteBinary(make([]byte, BinaryInplaceThreshold))
			b.Flush()
			b.Skip(BinaryInplaceThreshold)
			b.Release()
		}},
		{"book and bookAck", func(tb testing.TB, b *LinkBuffer) {
			copy(b.book(100, 100), "hello")
			b.bookAck(5)
			b.Skip(5)
			b.Release()
		}},
		{"bookAck(0)", func(tb testing.TB, b *LinkBuffer) {
			b.book(100, 100)
			b.bookAck(0)
		}},
		{"Malloc then MallocAck(0)", func(tb testing.TB, b *LinkBuffer) {
			b.Malloc(10)
			b.MallocAck(0)
			b.Flush()
		}},
		{"WriteDirect of nothing", func(tb testing.TB, b *LinkBuffer) {
			b.WriteDirect(nil, 0)
			b.Flush()
		}},
		{"appended and read", func(tb testing.TB, b *LinkBuffer) {
			other := NewLinkBuffer()
			other.WriteString("hello")
			b.Append(other)
			b.Flush()
			b.Skip(5)
			b.Release()
		}},
		{"sliced out", func(tb testing.TB, b *LinkBuffer) {
			writeFlush(tb, b, "hello")
			s, _ := b.Slice(5)
			b.Release()
			s.(*LinkBuffer).Close()
		}},
		{"closed unread", func(tb testing.TB, b *LinkBuffer) {
			writeFlush(tb, b, "hello")
			b.WriteString("pending")
			b.Close()
		}},
		{"closed after a reclaim", func(tb testing.TB, b *LinkBuffer) {
			writeFlush(tb, b, "hello")
			b.Skip(5)
			b.Release()
			b.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPoolBalance(t)
			b := NewLinkBuffer()
			defer b.Close()
			tt.play(t, b)
			if held := heldNodes(b); held != "" {
				t.Fatalf("empty buffer holds %s; want no node", held)
			}
			if b.Len() != 0 || b.MallocLen() != 0 {
				t.Fatalf("Len() = %d, MallocLen() = %d; want 0, 0", b.Len(), b.MallocLen())
			}
			// And it works as new afterwards, unless closed.
			if b.closed {
				return
			}
			writeFlush(t, b, "again")
			if got, err := b.Next(5); string(got) != "again" || err != nil {
				t.Fatalf("Next(5) after emptying = %q, %v; want \"again\", <nil>", got, err)
			}
			b.Release()
			if held := heldNodes(b); held != "" {
				t.Fatalf("buffer emptied again holds %s; want no node", held)
			}
		})
	}
}

// TestLinkBufferNoNodeReads plays every reader method on a buffer with no
// node, new or emptied by a reclaim: none may follow the missing chain.
func TestLinkBufferNoNodeReads(t *testing.T) {
	tests := []struct {
		name string
		read func(b *LinkBuffer) error
	}{
		{"Len", func(b *LinkBuffer) error { return wantInt(b.Len(), 0) }},
		{"IsEmpty", func(b *LinkBuffer) error { return wantInt(boolInt(b.IsEmpty()), 1) }},
		{"Next(0)", func(b *LinkBuffer) error { _, err := b.Next(0); return err }},
		{"Peek(0)", func(b *LinkBuffer) error { _, err := b.Peek(0); return err }},
		{"Skip(0)", func(b *LinkBuffer) error { return b.Skip(0) }},
		{"Next(1) fails", func(b *LinkBuffer) error { return wantShort(b.Next(1)) }},
		{"Peek(1) fails", func(b *LinkBuffer) error { return wantShort(b.Peek(1)) }},
		{"ReadByte fails", func(b *LinkBuffer) error {
			_, err := b.ReadByte()
			return wantShort(nil, err)
		}},
		{"Until fails", func(b *LinkBuffer) error {
			if _, err := b.Until('\n'); !errors.Is(err, errLinkBufferNoDelim) {
				return fmt.Errorf("Until = %v; want errLinkBufferNoDelim", err)
			}
			return nil
		}},
		{"Slice(0)", func(b *LinkBuffer) error {
			s, err := b.Slice(0)
			if err == nil {
				err = wantInt(s.Len(), 0)
			}
			return err
		}},
		{"Bytes", func(b *LinkBuffer) error { return wantInt(len(b.Bytes()), 0) }},
		{"GetBytes", func(b *LinkBuffer) error { return wantInt(len(b.GetBytes(nil)), 0) }},
		{"GetBytes into room", func(b *LinkBuffer) error { return wantInt(len(b.GetBytes(make([][]byte, 2))), 0) }},
		{"indexByte", func(b *LinkBuffer) error { return wantInt(b.indexByte('x', 0), -1) }},
		{"peekInto and readInto nothing", func(b *LinkBuffer) error {
			b.peekInto(nil)
			b.readInto(nil)
			return nil
		}},
		{"Release", func(b *LinkBuffer) error { return b.Release() }},
		{"MallocAck(0)", func(b *LinkBuffer) error { return b.MallocAck(0) }},
		{"Flush", func(b *LinkBuffer) error { return b.Flush() }},
	}
	for _, tt := range tests {
		for _, emptied := range []bool{false, true} {
			name := tt.name + "/new"
			if emptied {
				name = tt.name + "/reclaimed"
			}
			t.Run(name, func(t *testing.T) {
				b := NewLinkBuffer()
				defer b.Close()
				if emptied {
					writeFlush(t, b, "gone")
					b.Skip(4)
					b.Release()
				}
				if err := tt.read(b); err != nil {
					t.Fatal(err)
				}
				if held := heldNodes(b); held != "" {
					t.Fatalf("buffer holds %s; want no node", held)
				}
			})
		}
	}
}

func wantInt(got, want int) error {
	if got != want {
		return fmt.Errorf("got %d; want %d", got, want)
	}
	return nil
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

func wantShort(_ []byte, err error) error {
	if !errors.Is(err, errLinkBufferShort) {
		return fmt.Errorf("err = %v; want errLinkBufferShort", err)
	}
	return nil
}

// TestLinkBufferIdleFootprint measures the heap an emptied buffer keeps:
// its struct and nothing else, once the pools let go of what they cached.
// A node kept alive by a stale pointer would show as 96 bytes more.
func TestLinkBufferIdleFootprint(t *testing.T) {
	if size := unsafe.Sizeof(UnsafeLinkBuffer{}); size > 80 {
		t.Errorf("UnsafeLinkBuffer is %d bytes; want at most 80 (size class 80)", size)
	}
	const count = 10000
	bufs := make([]*LinkBuffer, count)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pool's victim cache
	runtime.ReadMemStats(&before)
	// All written before any is read, so each holds a node of its own, as
	// connections pinged at once do.
	for i := range bufs {
		bufs[i] = NewLinkBuffer()
		writeFlush(t, bufs[i], "ping")
	}
	for _, b := range bufs {
		b.Next(4)
		b.Release()
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perBuffer := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / count
	t.Logf("an emptied buffer keeps %d bytes of heap", perBuffer)
	// 80 bytes of struct, and some slack for whatever else the process
	// allocated meanwhile; one node more would be 96.
	if perBuffer > 80+32 {
		t.Errorf("an emptied buffer keeps %d bytes of heap; want about 80", perBuffer)
	}
	for i, b := range bufs {
		if held := heldNodes(b); held != "" {
			t.Fatalf("buffer %d holds %s; want no node", i, held)
		}
	}
	runtime.KeepAlive(bufs)
}

// TestLinkBufferReclaimRace runs a writer and a reader in tight
// write-read-release cycles, so the reader frees the chain again and
// again while the writer starts a new one: under -race the detector checks
// the hand-off of head and of the tail slots, and every byte is checked.
func TestLinkBufferReclaimRace(t *testing.T) {
	messages := 200000
	if testing.Short() {
		messages = 20000
	}
	b := NewLinkBuffer()
	defer b.Close()
	writerErr := make(chan error, 1)
	go func() {
		defer close(writerErr)
		for i := range messages {
			n := 1 + i%97
			p, err := b.Malloc(n)
			if err != nil {
				writerErr <- err
				return
			}
			for j := range p {
				p[j] = byte(i + j)
			}
			if err := b.Flush(); err != nil {
				writerErr <- err
				return
			}
			runtime.Gosched() // let the reader drain, so that it reclaims
		}
	}()
	for i := range messages {
		n := 1 + i%97
		for b.Len() < n {
			runtime.Gosched()
		}
		p, err := b.Next(n)
		if err != nil {
			t.Fatalf("message %d: Next(%d) = %v", i, n, err)
		}
		for j, c := range p {
			if c != byte(i+j) {
				t.Fatalf("message %d byte %d = %d; want %d", i, j, c, byte(i+j))
			}
		}
		if err := b.Release(); err != nil {
			t.Fatalf("Release() = %v", err)
		}
	}
	if err := <-writerErr; err != nil {
		t.Fatalf("writer: %v", err)
	}
	if held := heldNodes(b); held != "" {
		t.Fatalf("drained buffer holds %s; want no node", held)
	}
}

// TestLinkBufferReleaseFreesAll pins that a buffer whose reader consumed
// everything holds no memory after Release: idle connections rely on it.
func TestLinkBufferReleaseFreesAll(t *testing.T) {
	trackPool(t)
	start := bufpool.Held()
	b := NewLinkBuffer()
	if got := bufpool.Held(); got != start {
		t.Fatalf("NewLinkBuffer() took %d bytes; want 0", got-start)
	}
	for _, size := range []int{10, 5000, 70000} {
		p, _ := b.Malloc(size)
		p[0] = 1
		b.Flush()
		b.Next(size / 2)
		b.Release()
		b.Next(size - size/2)
		b.Release()
		if got := bufpool.Held(); got != start {
			t.Fatalf("after reading and releasing %d bytes the buffer holds %d; want 0", size, got-start)
		}
	}
	b.Close()
}

func TestLinkBufferAlwaysNoCopyRead(t *testing.T) {
	checkPoolBalance(t)
	alwaysNoCopyRead.Store(true)
	defer alwaysNoCopyRead.Store(false)
	b := NewLinkBuffer()
	writeFlush(t, b, "keep me")
	node := b.head // the writer started the chain; the reader takes it over at its first read
	p, _ := b.ReadBinary(4)
	s, _ := b.ReadString(3)
	if unsafe.SliceData(p) != unsafe.SliceData(node.buf) {
		t.Fatalf("ReadBinary with AlwaysNoCopyRead copied; want node memory")
	}
	b.Release()
	b.Close()
	// The memory was not recycled: a new buffer cannot overwrite it.
	other := NewLinkBuffer()
	writeFlush(t, other, "XXXXXXX")
	other.Close()
	if string(p) != "keep" || s != " me" {
		t.Fatalf("kept reads = %q, %q; want \"keep\", \" me\"", p, s)
	}
}

func TestLinkBufferZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	b := NewLinkBuffer()
	defer b.Close()
	out := NewLinkBuffer()
	defer out.Close()
	large := make([]byte, 64<<10)
	small := make([]byte, 64)
	cycles := map[string]func(){
		"Malloc/Flush/Next/Release 64B":   func() { mallocFlushNextRelease(b, 64) },
		"Malloc/Flush/Next/Release 64KiB": func() { mallocFlushNextRelease(b, 64<<10) },
		"WriteBinary small":               func() { writeBinaryNextRelease(b, small) },
		"WriteBinary large":               func() { writeBinaryNextRelease(b, large) },
		"spanning Next":                   func() { spanningNext(b) },
		"Slice/Append":                    func() { sliceAppend(b, out, 1024) },
		"book/bookAck/Next/Release":       func() { bookNextRelease(b, 512) },
	}
	for name, cycle := range cycles {
		cycle()
		if allocs := testing.AllocsPerRun(200, cycle); allocs != 0 {
			t.Errorf("%s: %v allocs per cycle; want 0", name, allocs)
		}
		if held := heldNodes(b); held != "" {
			t.Errorf("%s: buffer holds %s after the cycle; want no node", name, held)
		}
	}
}

// mallocFlushNextRelease is one write-then-read cycle of n bytes.
func mallocFlushNextRelease(b *LinkBuffer, n int) {
	p, _ := b.Malloc(n)
	p[0] = 1
	b.Flush()
	b.Next(n)
	b.Release()
}

// bookNextRelease is one cycle of a connection's input: book, a read
// system call's worth of bytes, bookAck, read, release.
func bookNextRelease(b *LinkBuffer, n int) {
	p := b.book(n, n)
	p[0] = 1
	b.bookAck(n)
	b.Next(n)
	b.Release()
}

// writeBinaryNextRelease writes p, reads it back and releases.
func writeBinaryNextRelease(b *LinkBuffer, p []byte) {
	b.WriteBinary(p)
	b.Flush()
	b.Next(len(p))
	b.Release()
}

// spanningNext reads 100 bytes split across two nodes, forcing a copy.
func spanningNext(b *LinkBuffer) {
	b.Malloc(LinkBufferCap - 50)
	b.Malloc(100)
	b.Flush()
	b.Skip(LinkBufferCap - 100)
	b.Next(100)
	b.Skip(b.Len())
	b.Release()
}

// sliceAppend moves n bytes from b to out with Slice and Append.
func sliceAppend(b, out *LinkBuffer, n int) {
	p, _ := b.Malloc(n)
	p[0] = 1
	b.Flush()
	s, _ := b.Slice(n)
	b.Release()
	out.Append(s.(*LinkBuffer))
	out.Flush()
	out.Next(n)
	out.Release()
}

// TestLinkBufferConcurrent streams patterned data through one buffer from
// a writer goroutine to a reader goroutine, the way a connection's poller
// and handler share its input buffer, and checks every byte read by each
// kind of read; under -race
// the detector checks the hand-off. 100 MiB (16 MiB with -short).
func TestLinkBufferConcurrent(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 16 << 20
	}
	checkPoolBalance(t)
	// The pattern period is prime, so no node size lines up with it.
	const period = 65521
	pattern := make([]byte, period+64<<10)
	for i := range pattern {
		j := i % period
		pattern[i] = byte(j*7 + j>>8)
	}
	at := func(pos, n int) []byte { return pattern[pos%period : pos%period+n] }

	b := NewLinkBuffer()
	defer b.Close()
	published := make(chan struct{}, 1) // the writer flushed
	drained := make(chan struct{}, 1)   // the reader released
	signal := func(c chan struct{}) {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	const maxBuffered = 4 << 20
	writerErr := make(chan error, 1)
	go func() {
		defer close(writerErr)
		for pos, i := 0, 0; pos < total; i++ {
			for b.Len() > maxBuffered {
				<-drained
			}
			n := min(1+(i*7919)%(48<<10), total-pos)
			switch i % 4 {
			case 0:
				p, err := b.Malloc(n)
				if err != nil {
					writerErr <- err
					return
				}
				copy(p, at(pos, n))
			case 1:
				b.WriteBinary(at(pos, n)) // large ones are referenced
			case 2:
				p := b.book(n, n)
				n = len(p)
				copy(p, at(pos, n))
				b.bookAck(n)
			case 3:
				b.WriteString(string(at(pos, n)))
			}
			pos += n
			if i%3 != 0 {
				b.Flush()
				signal(published)
			}
		}
		b.Flush()
		signal(published)
	}()

	for pos, i := 0, 0; pos < total; i++ {
		if b.Len() == 0 {
			<-published
			continue
		}
		n := min(b.Len(), 1+(i*104729)%(64<<10))
		var got []byte
		switch i % 5 {
		case 0:
			got, _ = b.Next(n)
		case 1:
			r, err := b.Slice(n)
			if err != nil {
				t.Fatal(err)
			}
			s := r.(*LinkBuffer)
			got = bytes.Clone(s.Bytes())
			s.Close()
		case 2:
			got, _ = b.ReadBinary(n)
		case 3:
			got, _ = b.Peek(n)
			got = bytes.Clone(got)
			b.Skip(n)
		case 4:
			// As a connection flushes: the segments, then Skip.
			for _, seg := range b.GetBytes(nil) {
				got = append(got, seg[:min(len(seg), n-len(got))]...)
				if len(got) == n {
					break
				}
			}
			b.Skip(n)
		}
		if !bytes.Equal(got, at(pos, n)) {
			t.Fatalf("bytes %d..%d differ from what was written", pos, pos+n)
		}
		pos += n
		b.Release()
		signal(drained)
	}
	if err := <-writerErr; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestLinkBufferSliceReleases pins the reference's rule that Slice releases
// the buffer: a reader that only slices (Kitex's multiplexed server never
// calls Release on its connection) must not keep every node it read. Before
// the rule, the chain grew by a node per message for the connection's life.
func TestLinkBufferSliceReleases(t *testing.T) {
	b := NewLinkBuffer()
	msg := bytes.Repeat([]byte{'m'}, 3000) // most messages span two 4 KiB nodes
	for i := range 1000 {
		if _, err := b.WriteBinary(msg); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		s, err := b.Slice(len(msg))
		if err != nil {
			t.Fatalf("message %d: Slice = %v", i, err)
		}
		if got, _ := s.Next(len(msg)); !bytes.Equal(got, msg) {
			t.Fatalf("message %d: the slice reads %q...", i, got[:8])
		}
		if err := s.Release(); err != nil {
			t.Fatal(err)
		}
	}
	chain := 0
	for n := b.head; n != nil; n = n.next {
		chain++
	}
	if chain > 2 {
		t.Fatalf("after 1,000 messages read only by Slice, the buffer's chain holds %d nodes; want at most 2", chain)
	}
}
