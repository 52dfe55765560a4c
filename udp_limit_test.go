package netpoll

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// udpSessionCount counts the sessions in l's socket tables.
func udpSessionCount(l *UDPListener) int {
	n := 0
	for _, s := range l.sockets {
		s.mu.Lock()
		n += len(s.sessions)
		s.mu.Unlock()
	}
	return n
}

// udpEcho does one round trip, retrying a datagram that loopback lost.
func udpEcho(t *testing.T, c *net.UDPConn, msg string) {
	t.Helper()
	var got []byte
	var err error
	for range 3 {
		if got, err = udpRoundTrip(c, []byte(msg)); err == nil {
			break
		}
	}
	if err != nil || string(got) != msg {
		t.Fatalf("echo of %q from %v = %q, %v", msg, c.LocalAddr(), got, err)
	}
}

// TestUDPSessionLimit is defect 6 of #15: sessions are bounded per listener.
// More peers than the bound send a datagram each; the sessions never pass
// it, every datagram past it is dropped and counted, the admitted peers are
// still served, and a new peer is admitted once a session ends.
func TestUDPSessionLimit(t *testing.T) {
	checkNoFDLeak(t)
	const limit, extra = 4, 40
	l := newUDPListener(t, WithMaxSessions(limit))
	startServer(t, l, func(ctx context.Context, c Connection) error {
		r := c.Reader()
		if b, err := r.Peek(r.Len()); err == nil && bytes.Equal(b, []byte("bye")) {
			_ = r.Release()
			return c.Close()
		}
		return echoHandler(ctx, c)
	})
	admitted := make([]*net.UDPConn, limit)
	for i := range admitted {
		admitted[i] = dialUDP(t, l)
		udpEcho(t, admitted[i], "hello")
	}
	refused, dropped := ReadMetrics().SessionsRefused, l.Dropped()
	for range extra {
		if _, err := dialUDP(t, l).Write([]byte("flood")); err != nil {
			t.Fatal(err)
		}
	}
	// Each flood datagram is either refused or (without a limit) given a
	// session; wait until all are accounted for. Dropped is counted after
	// the refusal, so it is waited for too.
	most := 0
	waitFor(t, 5*time.Second, "the flood to be handled", func() bool {
		count := udpSessionCount(l)
		most = max(most, count)
		handled := ReadMetrics().SessionsRefused - refused + uint64(max(count-limit, 0))
		return handled >= extra && l.Dropped()-dropped >= min(ReadMetrics().SessionsRefused-refused, extra)
	})
	if most = max(most, udpSessionCount(l)); most > limit {
		t.Fatalf("%d sessions with a limit of %d", most, limit)
	}
	if got := ReadMetrics().SessionsRefused - refused; got != extra {
		t.Errorf("SessionsRefused went up by %d; want %d", got, extra)
	}
	if got := l.Dropped() - dropped; got != extra {
		t.Errorf("Dropped went up by %d; want %d", got, extra)
	}
	var text bytes.Buffer
	if err := WriteMetricsText(&text); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(text.Bytes(), []byte("\nnetpoll_udp_sessions_refused_total ")) {
		t.Error("WriteMetricsText does not expose netpoll_udp_sessions_refused_total")
	}
	for _, c := range admitted {
		udpEcho(t, c, "still served")
	}
	// A session that ends makes room for one new peer.
	if _, err := admitted[0].Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the closed session to leave the table", func() bool { return udpSessionCount(l) == limit-1 })
	udpEcho(t, dialUDP(t, l), "newcomer")
	if got := udpSessionCount(l); got != limit {
		t.Errorf("%d sessions after a newcomer took the free place; want %d", got, limit)
	}
}

// TestUDPSessionLimitDefault pins the bound a listener has without
// WithMaxSessions, and that a negative value removes it.
func TestUDPSessionLimitDefault(t *testing.T) {
	if got := newUDPListener(t).maxSessions; got != defaultMaxSessions {
		t.Errorf("default session limit = %d; want %d", got, defaultMaxSessions)
	}
	if got := newUDPListener(t, WithMaxSessions(-1)).maxSessions; got != 0 {
		t.Errorf("WithMaxSessions(-1) left a limit of %d; want none", got)
	}
}
