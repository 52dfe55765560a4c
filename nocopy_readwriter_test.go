package netpoll

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestNewReader(t *testing.T) {
	// OneByteReader makes every method wait for several reads.
	r := NewReader(iotest.OneByteReader(strings.NewReader("GET /x\nhello world!")))
	if line, err := r.Until('\n'); string(line) != "GET /x\n" || err != nil {
		t.Fatalf("Until = %q, %v; want \"GET /x\\n\", <nil>", line, err)
	}
	if p, err := r.Peek(5); string(p) != "hello" || err != nil {
		t.Fatalf("Peek(5) = %q, %v", p, err)
	}
	if err := r.Skip(6); err != nil {
		t.Fatalf("Skip(6) = %v", err)
	}
	s, err := r.Slice(5)
	if err != nil {
		t.Fatalf("Slice(5) = %v", err)
	}
	if got, _ := s.Next(5); string(got) != "world" {
		t.Fatalf("slice Next(5) = %q; want \"world\"", got)
	}
	if c, err := r.ReadByte(); c != '!' || err != nil {
		t.Fatalf("ReadByte() = %q, %v", c, err)
	}
	r.Release()
	_, err = r.Next(1)
	if !errors.Is(err, ErrEOF) || errors.Is(err, io.EOF) {
		t.Fatalf("Next at the end = %v; want one matching ErrEOF and not io.EOF", err)
	}
	if _, err := r.Until('\n'); !errors.Is(err, ErrEOF) {
		t.Fatalf("Until at the end = %v; want ErrEOF", err)
	}
}

func TestNewReaderError(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(iotest.ErrReader(boom))
	if _, err := r.ReadBinary(1); !errors.Is(err, boom) {
		t.Fatalf("ReadBinary over a failing reader = %v; want %v", err, boom)
	}
}

func TestNewWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	p, _ := w.Malloc(3)
	copy(p, "abc")
	w.WriteString("def")
	w.WriteBinary(bytes.Repeat([]byte{'g'}, BinaryInplaceThreshold))
	w.WriteByte('h')
	if out.Len() != 0 {
		t.Fatalf("wrote %d bytes before Flush; want 0", out.Len())
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush() = %v", err)
	}
	want := "abcdef" + strings.Repeat("g", BinaryInplaceThreshold) + "h"
	if out.String() != want {
		t.Fatalf("flushed %d bytes, not what was written", out.Len())
	}
	if w.MallocLen() != 0 {
		t.Fatalf("MallocLen() = %d after Flush; want 0", w.MallocLen())
	}
	other := NewLinkBuffer()
	other.WriteString("appended")
	if err := w.Append(other); err != nil {
		t.Fatalf("Append = %v", err)
	}
	w.Flush()
	if !strings.HasSuffix(out.String(), "happended") {
		t.Fatalf("output = ...%q; want it to end with \"happended\"", out.String()[out.Len()-9:])
	}
}

func TestNewWriterError(t *testing.T) {
	w := NewWriter(errWriter{})
	w.WriteString("abc")
	if err := w.Flush(); err == nil {
		t.Fatalf("Flush over a failing writer = nil; want an error")
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("write failed") }

func TestNewIOReaderWriter(t *testing.T) {
	b := NewLinkBuffer()
	defer b.Close()
	w := NewIOWriter(b)
	msg := strings.Repeat("0123456789", 1000)
	if n, err := io.WriteString(w, msg); n != len(msg) || err != nil {
		t.Fatalf("WriteString = %d, %v", n, err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(NewIOReader(b)))
	if err != nil || string(got) != msg {
		t.Fatalf("ReadAll = %d bytes, %v; want %d bytes, <nil>", len(got), err, len(msg))
	}
	// Over any Reader but a connection, NewIOReader serves only what is
	// buffered and never pulls from an underlying io.Reader, as the
	// reference does.
	zr := NewReader(strings.NewReader(msg))
	if n, err := NewIOReader(zr).Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read with nothing buffered = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := zr.Peek(len(msg)); err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(NewIOReader(zr), []byte(msg)); err != nil {
		t.Fatalf("iotest.TestReader once buffered: %v", err)
	}
	var pipe bytes.Buffer
	rwz := NewReadWriter(&pipe)
	rw := NewIOReadWriter(rwz)
	io.WriteString(rw, "ping")
	if _, err := rwz.Peek(4); err != nil {
		t.Fatal(err)
	}
	if p, err := io.ReadAll(rw); string(p) != "ping" || err != nil {
		t.Fatalf("round trip through NewIOReadWriter(NewReadWriter) = %q, %v", p, err)
	}
}

// TestNewIOReaderOfConnectionBlocks: over a connection, NewIOReader is the
// connection's own Read, which waits for input and ends with a bare io.EOF.
func TestNewIOReaderOfConnectionBlocks(t *testing.T) {
	server, client := connPair(t, "tcp")
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = client.Write([]byte("late"))
		_ = client.Close()
	}()
	got, err := io.ReadAll(NewIOReader(server.Reader()))
	if err != nil || string(got) != "late" {
		t.Fatalf("ReadAll(NewIOReader(connection)) = %q, %v; want %q, nil", got, err, "late")
	}
}

// TestNewReadWriterEOFNotSticky: the end of the underlying reader is
// reported once; after more is written to it, reads succeed again (Hertz's
// mock connection relies on this).
func TestNewReadWriterEOFNotSticky(t *testing.T) {
	var b bytes.Buffer
	rw := NewReadWriter(&b)
	if _, err := rw.WriteBinary([]byte("efghljk")); err != nil {
		t.Fatal(err)
	}
	if _, err := rw.ReadBinary(7); !errors.Is(err, ErrEOF) {
		t.Fatalf("ReadBinary before Flush = %v; want ErrEOF", err)
	}
	if err := rw.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := rw.ReadBinary(7)
	if err != nil || string(got) != "efghljk" {
		t.Fatalf("ReadBinary after Flush = %q, %v; want %q", got, err, "efghljk")
	}
}
