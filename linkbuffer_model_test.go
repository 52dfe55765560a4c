package netpoll

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ccb70390/netpoll/internal/bufpool"
)

// choices feeds a model run its decisions: a seeded PRNG in the model test,
// the fuzzer's input in FuzzLinkBuffer.
type choices interface {
	// intn returns a value in [0, n).
	intn(n int) int
	// done reports that the run should stop.
	done() bool
}

// randChoices draws from a seeded PRNG for a fixed number of steps.
type randChoices struct {
	rng   *rand.Rand
	steps int
}

func (c *randChoices) intn(n int) int { return c.rng.IntN(n) }
func (c *randChoices) done() bool     { c.steps--; return c.steps < 0 }

// byteChoices reads decisions from fuzz input, one byte (or two for large
// ranges) each; when the input runs out every choice is 0.
type byteChoices struct{ data []byte }

func (c *byteChoices) intn(n int) int {
	v := 0
	for range 2 {
		v <<= 8
		if len(c.data) > 0 {
			v |= int(c.data[0])
			c.data = c.data[1:]
		}
		if n <= 256 {
			break
		}
	}
	return v % n
}
func (c *byteChoices) done() bool { return len(c.data) == 0 }

// view is a slice the buffer handed out that must stay intact until Release.
type view struct {
	op   string
	got  []byte
	want []byte
}

// slicedReader is a Reader from Slice with its model content.
type slicedReader struct {
	buf   *LinkBuffer
	want  []byte
	views []view
}

// model plays operations on a LinkBuffer and on plain byte slices, and
// fails as soon as they disagree.
type model struct {
	tb  testing.TB
	in  choices
	buf *LinkBuffer

	readable   []byte // flushed and unread
	pending    []byte // written since the last Flush
	views      []view
	slices     []*slicedReader
	lastMalloc int // size of the latest Malloc if nothing was written since, else -1
	seq        uint32
	log        []string
}

func newModel(tb testing.TB, in choices) *model {
	return &model{tb: tb, in: in, buf: NewLinkBuffer(), lastMalloc: -1}
}

// fail reports a mismatch with the last operations played.
func (m *model) fail(format string, args ...any) {
	m.tb.Helper()
	tail := m.log[max(0, len(m.log)-40):]
	m.tb.Fatalf("%s\nlast operations:\n  %s", fmt.Sprintf(format, args...), strings.Join(tail, "\n  "))
}

// pattern returns n fresh bytes that differ from run to run of the buffer.
func (m *model) pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		m.seq = m.seq*1664525 + 1013904223
		p[i] = byte(m.seq >> 24)
	}
	return p
}

// size picks a read or write size, mostly small, sometimes spanning nodes.
func (m *model) size() int {
	switch m.in.intn(8) {
	case 0:
		return 0
	case 1:
		return m.in.intn(3 * LinkBufferCap)
	case 2:
		return BinaryInplaceThreshold + m.in.intn(64)
	}
	return m.in.intn(40)
}

// readSize picks a size to read, usually within Len, sometimes beyond.
func (m *model) readSize() int {
	if m.in.intn(10) == 0 {
		return len(m.readable) + 1 + m.in.intn(3)
	}
	if len(m.readable) == 0 {
		return 0
	}
	return m.in.intn(len(m.readable) + 1)
}

// run plays operations until the input says stop, then tears down and
// checks that every pooled byte came back.
func (m *model) run() {
	trackPool(m.tb)
	start := bufpool.Held()
	for !m.in.done() {
		m.step()
		m.checkLens()
	}
	m.checkViews()
	m.buf.Close()
	if held := heldNodes(m.buf); held != "" {
		m.fail("after Close the buffer holds %s; want no node", held)
	}
	for _, s := range m.slices {
		s.buf.Close()
	}
	if got := bufpool.Held(); got != start {
		m.fail("after Close of everything bufpool holds %d bytes more than at the start", got-start)
	}
}

func (m *model) checkLens() {
	m.tb.Helper()
	if got := m.buf.Len(); got != len(m.readable) {
		m.fail("Len() = %d; want %d", got, len(m.readable))
	}
	if got := m.buf.MallocLen(); got != len(m.pending) {
		m.fail("MallocLen() = %d; want %d", got, len(m.pending))
	}
}

// checkViews verifies every slice handed out since the last Release.
func (m *model) checkViews() {
	m.tb.Helper()
	check := func(owner string, vs []view) {
		for _, v := range vs {
			if !bytes.Equal(v.got, v.want) {
				m.fail("%s: slice from %s (%d bytes) changed before Release at byte %d", owner, v.op, len(v.want), firstDiff(v.got, v.want))
			}
		}
	}
	check("buffer", m.views)
	for i, s := range m.slices {
		check(fmt.Sprintf("slice %d", i), s.views)
	}
}

// expectRead checks one read of the model: on success it must return want
// and consume n bytes; beyond Len it must fail with errLinkBufferShort.
func (m *model) expectRead(op string, n int, got []byte, err error, consume bool) {
	m.tb.Helper()
	if n > len(m.readable) {
		if !errors.Is(err, errLinkBufferShort) {
			m.fail("%s with %d buffered: err = %v; want errLinkBufferShort", op, len(m.readable), err)
		}
		return
	}
	if err != nil || !bytes.Equal(got, m.readable[:n]) {
		m.fail("%s = %q, %v; want %q, <nil>", op, got, err, m.readable[:n])
	}
	if consume {
		m.readable = m.readable[n:]
	}
}

// firstDiff returns the index of the first byte where a and b differ.
func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// write appends p to the model's pending bytes.
func (m *model) write(p []byte) {
	m.pending = append(m.pending, p...)
	m.lastMalloc = -1
}

func (m *model) step() {
	b := m.buf
	op := m.in.intn(22)
	switch op {
	case 0, 1: // Malloc
		n := m.size()
		p, err := b.Malloc(n)
		if err != nil || len(p) != n {
			m.fail("Malloc(%d) = len %d, %v", n, len(p), err)
		}
		copy(p, m.pattern(n))
		m.log = append(m.log, fmt.Sprintf("Malloc(%d)", n))
		m.write(p)
		m.lastMalloc = n
	case 2: // WriteString
		p := m.pattern(m.size())
		m.log = append(m.log, fmt.Sprintf("WriteString(%d)", len(p)))
		if n, err := b.WriteString(string(p)); n != len(p) || err != nil {
			m.fail("WriteString = %d, %v", n, err)
		}
		m.write(p)
	case 3: // WriteBinary
		p := m.pattern(m.size())
		m.log = append(m.log, fmt.Sprintf("WriteBinary(%d)", len(p)))
		if n, err := b.WriteBinary(p); n != len(p) || err != nil {
			m.fail("WriteBinary = %d, %v", n, err)
		}
		m.write(p)
	case 4: // WriteByte
		p := m.pattern(1)
		m.log = append(m.log, "WriteByte")
		b.WriteByte(p[0])
		m.write(p)
	case 5: // WriteDirect right after a Malloc
		if m.lastMalloc < 0 {
			return
		}
		remain := m.in.intn(m.lastMalloc + 1)
		p := m.pattern(m.size())
		m.log = append(m.log, fmt.Sprintf("WriteDirect(%d, %d)", len(p), remain))
		if err := b.WriteDirect(p, remain); err != nil {
			m.fail("WriteDirect(%d bytes, %d) = %v", len(p), remain, err)
		}
		cut := len(m.pending) - remain
		m.pending = append(m.pending[:cut:cut], append(append([]byte{}, p...), m.pending[cut:]...)...)
		m.lastMalloc = -1
	case 6: // MallocAck
		n := m.in.intn(len(m.pending) + 1)
		m.log = append(m.log, fmt.Sprintf("MallocAck(%d)", n))
		if err := b.MallocAck(n); err != nil {
			m.fail("MallocAck(%d) = %v", n, err)
		}
		m.pending = m.pending[:n]
		m.lastMalloc = -1
	case 7, 8: // Flush
		m.log = append(m.log, "Flush")
		if err := b.Flush(); err != nil {
			m.fail("Flush() = %v", err)
		}
		m.readable = append(m.readable, m.pending...)
		m.pending = nil
		m.lastMalloc = -1
	case 9, 10: // Next
		n := m.readSize()
		m.log = append(m.log, fmt.Sprintf("Next(%d)", n))
		p, err := b.Next(n)
		if err == nil {
			m.views = append(m.views, view{"Next", p, bytes.Clone(p)})
		}
		m.expectRead(fmt.Sprintf("Next(%d)", n), n, p, err, true)
	case 11: // Peek
		n := m.readSize()
		m.log = append(m.log, fmt.Sprintf("Peek(%d)", n))
		p, err := b.Peek(n)
		if err == nil {
			m.views = append(m.views, view{"Peek", p, bytes.Clone(p)})
		}
		m.expectRead(fmt.Sprintf("Peek(%d)", n), n, p, err, false)
	case 12: // Skip
		n := m.readSize()
		m.log = append(m.log, fmt.Sprintf("Skip(%d)", n))
		err := b.Skip(n)
		var want []byte
		if n <= len(m.readable) {
			want = m.readable[:n]
		}
		m.expectRead(fmt.Sprintf("Skip(%d)", n), n, want, err, true)
	case 13: // ReadBinary / ReadString / ReadByte
		n := m.readSize()
		m.log = append(m.log, fmt.Sprintf("Read*(%d)", n))
		switch m.in.intn(3) {
		case 0:
			p, err := b.ReadBinary(n)
			m.expectRead("ReadBinary", n, p, err, true)
		case 1:
			s, err := b.ReadString(n)
			m.expectRead("ReadString", n, []byte(s), err, true)
		default:
			c, err := b.ReadByte()
			m.expectRead("ReadByte", 1, []byte{c}, err, true)
		}
	case 14: // Until
		delim := byte(m.in.intn(256))
		m.log = append(m.log, fmt.Sprintf("Until(%d)", delim))
		p, err := b.Until(delim)
		i := bytes.IndexByte(m.readable, delim)
		if i < 0 {
			if !errors.Is(err, errLinkBufferNoDelim) {
				m.fail("Until(%d) with no delim = %q, %v; want errLinkBufferNoDelim", delim, p, err)
			}
			return
		}
		m.views = append(m.views, view{"Until", p, bytes.Clone(p)})
		m.expectRead("Until", i+1, p, err, true)
	case 15: // Release
		m.log = append(m.log, "Release")
		m.checkViews()
		if err := b.Release(); err != nil {
			m.fail("Release() = %v", err)
		}
		m.views = m.views[:0]
		if !b.writing && b.Len() == 0 {
			if held := heldNodes(b); held != "" {
				m.fail("after Release with nothing to read and the writer idle, the buffer holds %s; want no node", held)
			}
		}
	case 16: // Slice: it releases the buffer too, as the reference's does
		n := m.readSize()
		m.log = append(m.log, fmt.Sprintf("Slice(%d)", n))
		m.checkViews()
		r, err := b.Slice(n)
		if n > len(m.readable) {
			m.expectRead("Slice", n, nil, err, false)
			return
		}
		if err != nil {
			m.fail("Slice(%d) = %v", n, err)
		}
		m.views = m.views[:0]
		m.slices = append(m.slices, &slicedReader{buf: r.(*LinkBuffer), want: bytes.Clone(m.readable[:n])})
		m.readable = m.readable[n:]
	case 17: // play on a slice: read, release or close it
		if len(m.slices) == 0 {
			return
		}
		i := m.in.intn(len(m.slices))
		m.stepSlice(i)
	case 18: // Append a slice, or a fresh buffer with flushed and unflushed bytes
		m.appendOne()
	case 19: // Bytes, GetBytes, indexByte
		m.log = append(m.log, "Bytes/GetBytes/indexByte")
		if got := b.Bytes(); !bytes.Equal(got, m.readable) {
			m.fail("Bytes() = %q; want %q", got, m.readable)
		}
		slots := m.in.intn(4)
		segs := b.GetBytes(make([][]byte, slots))
		joined := bytes.Join(segs, nil)
		if slots == 0 && !bytes.Equal(joined, m.readable) || !bytes.HasPrefix(m.readable, joined) {
			m.fail("GetBytes(%d slots) = %q; want a prefix of %q", slots, joined, m.readable)
		}
		c, skip := byte(m.in.intn(256)), m.in.intn(len(m.readable)+2)
		want := -1
		if skip <= len(m.readable) {
			if i := bytes.IndexByte(m.readable[skip:], c); i >= 0 {
				want = skip + i
			}
		}
		if got := b.indexByte(c, skip); got != want {
			m.fail("indexByte(%d, %d) = %d; want %d", c, skip, got, want)
		}
	case 20: // book and bookAck, as a connection's poller does
		size, limit := 1+m.in.intn(2*LinkBufferCap), 1+m.in.intn(2*LinkBufferCap)
		p := b.book(size, limit)
		if len(p) < min(size, limit) || len(p) > limit {
			m.fail("book(%d, %d) gave %d bytes", size, limit, len(p))
		}
		n := m.in.intn(len(p) + 1)
		copy(p, m.pattern(n))
		m.log = append(m.log, fmt.Sprintf("book(%d, %d)+bookAck(%d)", size, limit, n))
		m.pending = append(m.pending, p[:n]...)
		m.readable = append(m.readable, m.pending...)
		m.pending = nil
		m.lastMalloc = -1
		if got, err := b.bookAck(n); got != len(m.readable) || err != nil {
			m.fail("bookAck(%d) = %d, %v; want %d, <nil>", n, got, err, len(m.readable))
		}
	case 21: // errors on misuse
		m.log = append(m.log, "misuse")
		if _, err := b.Next(-1); !errors.Is(err, errLinkBufferNegative) {
			m.fail("Next(-1) = %v; want errLinkBufferNegative", err)
		}
		if err := b.MallocAck(len(m.pending) + 1); !errors.Is(err, errLinkBufferMisuse) {
			m.fail("MallocAck beyond written = %v; want errLinkBufferMisuse", err)
		}
	}
}

// stepSlice plays one operation on the i-th slice.
func (m *model) stepSlice(i int) {
	s := m.slices[i]
	switch m.in.intn(3) {
	case 0:
		n := m.in.intn(len(s.want) + 2)
		m.log = append(m.log, fmt.Sprintf("slice %d: Next(%d)", i, n))
		p, err := s.buf.Next(n)
		if n > len(s.want) {
			if !errors.Is(err, errLinkBufferShort) {
				m.fail("slice Next(%d) of %d = %v; want errLinkBufferShort", n, len(s.want), err)
			}
			return
		}
		if err != nil || !bytes.Equal(p, s.want[:n]) {
			m.fail("slice Next(%d) = %q, %v; want %q", n, p, err, s.want[:n])
		}
		s.views = append(s.views, view{"slice Next", p, bytes.Clone(p)})
		s.want = s.want[n:]
	case 1:
		m.log = append(m.log, fmt.Sprintf("slice %d: Release", i))
		m.checkViews()
		s.buf.Release()
		s.views = s.views[:0]
	default:
		m.log = append(m.log, fmt.Sprintf("slice %d: Close", i))
		m.checkViews()
		s.buf.Close()
		m.slices = append(m.slices[:i], m.slices[i+1:]...)
	}
}

// appendOne moves a slice or a fresh buffer into the buffer with Append.
func (m *model) appendOne() {
	if len(m.slices) > 0 && m.in.intn(2) == 0 {
		i := m.in.intn(len(m.slices))
		s := m.slices[i]
		m.log = append(m.log, fmt.Sprintf("Append(slice %d)", i))
		m.checkViews() // Append invalidates the slice's own views
		if err := m.buf.Append(s.buf); err != nil {
			m.fail("Append(slice) = %v", err)
		}
		m.write(s.want)
		m.slices = append(m.slices[:i], m.slices[i+1:]...)
		return
	}
	other := NewLinkBuffer()
	flushed, unflushed := m.pattern(m.size()), m.pattern(m.size())
	other.WriteBinary(flushed)
	other.Flush()
	skip := m.in.intn(len(flushed) + 1)
	other.Skip(skip)
	other.WriteBinary(unflushed)
	m.log = append(m.log, fmt.Sprintf("WriteBuffer(%d flushed, %d read, %d unflushed)", len(flushed), skip, len(unflushed)))
	if err := m.buf.WriteBuffer(other); err != nil {
		m.fail("WriteBuffer = %v", err)
	}
	m.write(flushed[skip:])
	m.write(unflushed)
}

// TestLinkBufferModel plays long random operation sequences against the
// model, with nodes small enough that most reads and writes span several.
func TestLinkBufferModel(t *testing.T) {
	runs, steps := 200, 2000
	if testing.Short() || raceEnabled {
		runs = 40
	}
	for _, nodeSize := range []int{64, 4096} {
		t.Run(fmt.Sprintf("node%d", nodeSize), func(t *testing.T) {
			withNodeSize(t, nodeSize)
			for run := range runs {
				seed := uint64(run)*0x9E3779B97F4A7C15 + uint64(nodeSize)
				ok := t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
					in := &randChoices{rng: rand.New(rand.NewPCG(seed, seed>>7)), steps: steps}
					newModel(t, in).run()
				})
				if !ok {
					t.Fatalf("replay with seed %d (node size %d)", seed, nodeSize)
				}
			}
		})
	}
}
