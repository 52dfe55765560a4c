package netpoll

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

// TestMetricsCountKnownTraffic echoes a known number of bytes over two
// connections and checks that every counter moved by what happened.
func TestMetricsCountKnownTraffic(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	startServer(t, ln, echoHandler)
	before := ReadMetrics()
	const conns, msgs, size = 2, 10, 1000
	for range conns {
		c := dialStd(t, ln)
		msg := bytes.Repeat([]byte("m"), size)
		for range msgs {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.Close()
	}
	waitFor(t, 5*time.Second, "server closes", func() bool {
		return ReadMetrics().ConnectionsClosed-before.ConnectionsClosed >= conns
	})
	after := ReadMetrics()
	checks := []struct {
		name      string
		got, want uint64
	}{
		{"accepted", after.ConnectionsAccepted - before.ConnectionsAccepted, conns},
		{"closed", after.ConnectionsClosed - before.ConnectionsClosed, conns},
		{"bytes read", after.BytesRead - before.BytesRead, conns * msgs * size},
		{"bytes written", after.BytesWritten - before.BytesWritten, conns * msgs * size},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s grew by %d; want %d", c.name, c.got, c.want)
		}
	}
	if after.Reads-before.Reads < conns*msgs/2 || after.Writes-before.Writes < conns*msgs/2 {
		t.Errorf("reads grew by %d, writes by %d; want about %d each", after.Reads-before.Reads, after.Writes-before.Writes, conns*msgs)
	}
	if after.ConnectionsOpen != before.ConnectionsOpen {
		t.Errorf("open connections %d after; %d before", after.ConnectionsOpen, before.ConnectionsOpen)
	}
}

func TestWriteMetricsText(t *testing.T) {
	var b strings.Builder
	if err := WriteMetricsText(&b); err != nil {
		t.Fatal(err)
	}
	for _, d := range MetricDescs() {
		if !strings.Contains(b.String(), "\n"+d.Name+" ") || !strings.Contains(b.String(), "# TYPE "+d.Name) {
			t.Errorf("metrics text lacks %s", d.Name)
		}
	}
}

// TestBufferMetrics turns buffer counting on for the rest of the test
// binary; benchmarks that must measure the production path run with
// -run '^$', as the README's benchmark commands do.
func TestBufferMetrics(t *testing.T) {
	EnableBufferMetrics()
	before := ReadMetrics().BufferBytesInUse
	b := NewLinkBuffer()
	if _, err := b.Malloc(1000); err != nil {
		t.Fatal(err)
	}
	if held := ReadMetrics().BufferBytesInUse - before; held < 1000 {
		t.Fatalf("BufferBytesInUse grew by %d after a 1000-byte Malloc; want at least 1000", held)
	}
	_ = b.Close()
	if held := ReadMetrics().BufferBytesInUse - before; held != 0 {
		t.Fatalf("BufferBytesInUse is %d above its start after Close; want 0", held)
	}
}
