//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package poller

import (
	"testing"
	"time"

	"github.com/ccb70390/netpoll/internal/sys"
)

// echoRig is a socket pair through one poller: the server side echoes with
// the Inputs path, the client side signals each reply.
type echoRig struct {
	client  int
	msg     []byte
	replies chan int
	timeout *time.Timer // reused: time.After would allocate per message
}

func newEchoRig(t testing.TB, size int) *echoRig {
	t.Helper()
	p := startPoller(t)
	server, client := newSocketPair(t)
	r := &echoRig{client: client, msg: make([]byte, size), replies: make(chan int, 1),
		timeout: time.NewTimer(time.Hour)}
	in := make([]byte, 64<<10)
	out := make([]byte, 64<<10)
	register(t, p, server, PollReadable, func(op *FDOperator) {
		op.Inputs = func(vs [][]byte) [][]byte { vs[0] = in; return vs[:1] }
		op.InputAck = func(n int) error { _, err := sys.Write(server, in[:n]); return err }
	})
	register(t, p, client, PollReadable, func(op *FDOperator) {
		op.OnRead = func(Poll) error {
			// Only replies are sent: at cleanup the closed fd reports a
			// hang-up nobody receives, and a callback must not block then.
			if n, _ := sys.Read(client, out); n > 0 {
				r.replies <- n
			}
			return nil
		}
	})
	return r
}

// roundTrip sends one message and waits until all of it came back.
func (r *echoRig) roundTrip(t testing.TB) {
	if _, err := sys.Write(r.client, r.msg); err != nil {
		t.Fatalf("Write() = %v", err)
	}
	r.timeout.Reset(5 * time.Second)
	for got := 0; got < len(r.msg); {
		select {
		case n := <-r.replies:
			got += n
		case <-r.timeout.C:
			t.Fatalf("echo timed out after %d of %d bytes", got, len(r.msg))
		}
	}
}

func TestEchoNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newEchoRig(t, 64)
	r.roundTrip(t) // warm up: events buffer, scratch
	if allocs := testing.AllocsPerRun(200, func() { r.roundTrip(t) }); allocs != 0 {
		t.Fatalf("echo through the poller allocates %v times per message; want 0", allocs)
	}
}

func BenchmarkEcho(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"64B", 64}, {"4KiB", 4 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			r := newEchoRig(b, size.n)
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				r.roundTrip(b)
			}
		})
	}
}

// BenchmarkTrigger measures Trigger to a callback on the poller goroutine: the
// ticker, due on every iteration, reports each wake-up.
func BenchmarkTrigger(b *testing.B) {
	p := startPoller(b)
	woke := make(chan struct{}, 1)
	p.SetTicker(time.Nanosecond, func(int64) { signal(woke, struct{}{}) })
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Trigger(); err != nil {
			b.Fatal(err)
		}
		<-woke
	}
	b.StopTimer()
	p.SetTicker(0, nil)
}
