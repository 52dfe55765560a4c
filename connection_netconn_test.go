package netpoll

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// connPair returns a server connection (handed to OnConnect, no OnRequest)
// and a dialed client connection.
func connPair(t *testing.T, network string) (server, client Connection) {
	t.Helper()
	ln := newLocalListener(t, network)
	accepted := make(chan Connection, 1)
	startServer(t, ln, nil, WithOnConnect(func(ctx context.Context, c Connection) context.Context {
		accepted <- c
		return ctx
	}))
	client = dial(t, ln)
	server = recvTimeout(t, accepted, 5*time.Second, "accepted connection")
	t.Cleanup(func() { _ = server.Close() })
	return server, client
}

func TestReadReturnsBareEOF(t *testing.T) {
	checkNoFDLeak(t)
	server, client := connPair(t, "tcp")
	if _, err := client.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "tail" {
		t.Fatalf("ReadAll = %q, %v; want %q, nil", got, err, "tail")
	}
	n, err := server.Read(make([]byte, 4))
	if n != 0 || err != io.EOF {
		t.Fatalf("Read after end = %d, %v; want 0, io.EOF (bare, ==)", n, err)
	}
	// The nocopy Reader reports the end as ErrEOF, which matches
	// ErrConnClosed and not io.EOF, as in the reference (issue #16).
	_, err = server.Reader().Next(1)
	if !errors.Is(err, ErrEOF) || !errors.Is(err, ErrConnClosed) || errors.Is(err, io.EOF) {
		t.Fatalf("Next after end = %v; want ErrEOF matching ErrConnClosed, not io.EOF", err)
	}
}

// TestWriteThenCloseDeliveredWithHandler: 1 MiB written then closed by the
// peer reaches an OnRequest handler intact, in every trial.
func TestWriteThenCloseDeliveredWithHandler(t *testing.T) {
	checkNoFDLeak(t)
	ln := newLocalListener(t, "tcp")
	const size = 1 << 20
	type result struct {
		n   int
		sum uint64
	}
	results := make(chan result, 1)
	var mu sync.Mutex
	state := map[Connection]*result{}
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		mu.Lock()
		r := state[c]
		if r == nil {
			r = &result{}
			state[c] = r
		}
		mu.Unlock()
		b, err := c.Reader().Next(c.Reader().Len())
		if err != nil {
			return err
		}
		for _, x := range b {
			r.sum = r.sum*31 + uint64(x)
		}
		r.n += len(b)
		if r.n == size {
			results <- *r
		}
		return c.Reader().Release()
	})
	msg := make([]byte, size)
	var want uint64
	for i := range msg {
		msg[i] = byte(i*13 + i>>9)
		want = want*31 + uint64(msg[i])
	}
	trials := 100
	if testing.Short() {
		trials = 10
	}
	for i := range trials {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		r := recvTimeout(t, results, 10*time.Second, "full delivery")
		if r.n != size || r.sum != want {
			t.Fatalf("trial %d: got %d bytes (sum %x); want %d (sum %x)", i, r.n, r.sum, size, want)
		}
	}
}

func TestPastDeadlineFailsAtOnce(t *testing.T) {
	checkNoFDLeak(t)
	server, client := connPair(t, "tcp")
	_, _ = client.Write([]byte("data"))
	waitFor(t, 5*time.Second, "input", func() bool { return server.Reader().Len() == 4 })
	_ = server.SetDeadline(time.Now().Add(-time.Second))
	if _, err := server.Read(make([]byte, 4)); !isDeadlineErr(err, ErrReadTimeout) {
		t.Fatalf("Read past deadline = %v; want timeout", err)
	}
	if n, err := server.Write([]byte("x")); n != 0 || !isDeadlineErr(err, ErrWriteTimeout) {
		t.Fatalf("Write past deadline = %d, %v; want 0, timeout", n, err)
	}
	// Extending the deadline makes the connection usable again.
	_ = server.SetDeadline(time.Time{})
	b := make([]byte, 4)
	if _, err := io.ReadFull(server, b); err != nil || string(b) != "data" {
		t.Fatalf("Read after clearing deadline = %q, %v", b, err)
	}
}

func isDeadlineErr(err, sentinel error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded) && errors.Is(err, sentinel)
}

func TestMovingDeadlineWakesBlockedRead(t *testing.T) {
	for _, initial := range []time.Duration{0, time.Hour} {
		t.Run("initial="+initial.String(), func(t *testing.T) {
			checkNoFDLeak(t)
			server, _ := connPair(t, "tcp")
			if initial > 0 {
				_ = server.SetReadDeadline(time.Now().Add(initial))
			}
			done := make(chan error, 1)
			go func() {
				_, err := server.Read(make([]byte, 1))
				done <- err
			}()
			time.Sleep(50 * time.Millisecond)
			_ = server.SetReadDeadline(time.Now().Add(-time.Second))
			if err := recvTimeout(t, done, time.Second, "woken Read"); !isDeadlineErr(err, ErrReadTimeout) {
				t.Fatalf("Read = %v; want timeout", err)
			}
		})
	}
}

// TestDeadlineSetDuringBlockedWrite: a Write blocked on a peer that never
// reads, with no deadline when it started, returns once one is set.
func TestDeadlineSetDuringBlockedWrite(t *testing.T) {
	checkNoFDLeak(t)
	server, _ := connPair(t, "tcp")
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for range 512 {
			if _, err := server.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	time.Sleep(200 * time.Millisecond) // the socket buffers fill long before
	_ = server.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := recvTimeout(t, done, 2*time.Second, "woken Write"); !isDeadlineErr(err, ErrWriteTimeout) {
		t.Fatalf("Write = %v; want timeout", err)
	}
}

func TestConcurrentReadsAndWritesSerialised(t *testing.T) {
	checkNoFDLeak(t)
	server, client := connPair(t, "tcp")
	const writers, per, size = 8, 50, 1000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := bytes.Repeat([]byte{byte('A' + w)}, size)
			for range per {
				if n, err := client.Write(msg); n != size || err != nil {
					t.Errorf("Write = %d, %v", n, err)
					return
				}
			}
		}()
	}
	total := writers * per * size
	var mu sync.Mutex
	counts := map[byte]int{}
	read := 0
	var rg sync.WaitGroup
	for range 4 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			buf := make([]byte, 777)
			for {
				mu.Lock()
				done := read >= total
				mu.Unlock()
				if done {
					return
				}
				_ = server.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, err := server.Read(buf)
				mu.Lock()
				for _, b := range buf[:n] {
					counts[b]++
				}
				read += n
				mu.Unlock()
				if err != nil && !isDeadlineErr(err, ErrReadTimeout) {
					t.Errorf("Read: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rg.Wait()
	for w := range writers {
		if got := counts[byte('A'+w)]; got != per*size {
			t.Fatalf("writer %c: %d bytes arrived; want %d", 'A'+w, got, per*size)
		}
	}
}

func TestWriteBlocksAtDeadlineWhenPeerDoesNotRead(t *testing.T) {
	checkNoFDLeak(t)
	server, _ := connPair(t, "tcp")
	_ = server.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	chunk := make([]byte, 1<<20)
	total := 0
	var err error
	for range 512 {
		var n int
		n, err = server.Write(chunk)
		total += n
		if err != nil {
			break
		}
	}
	if !isDeadlineErr(err, ErrWriteTimeout) {
		t.Fatalf("Write = %v after %d bytes; want timeout", err, total)
	}
	if total > 64<<20 {
		t.Fatalf("%d bytes accepted by a peer that never reads; want bounded", total)
	}
}

func TestMethodsAfterClose(t *testing.T) {
	checkNoFDLeak(t)
	server, _ := connPair(t, "tcp")
	_ = server.Close()
	checks := map[string]error{}
	_, checks["Read"] = server.Read(make([]byte, 1))
	_, checks["Write"] = server.Write([]byte("x"))
	checks["Close"] = server.Close()
	checks["SetDeadline"] = server.SetDeadline(time.Now())
	_, checks["Next"] = server.Reader().Next(1)
	checks["Flush"] = server.Writer().Flush()
	for name, err := range checks {
		if !errors.Is(err, net.ErrClosed) || !errors.Is(err, ErrConnClosed) {
			t.Errorf("%s after Close = %v; want net.ErrClosed and ErrConnClosed", name, err)
		}
	}
	if server.IsActive() {
		t.Errorf("IsActive after Close = true")
	}
}

func TestNocopyReaderConcurrentAccess(t *testing.T) {
	checkNoFDLeak(t)
	server, _ := connPair(t, "tcp")
	blocked := make(chan error, 1)
	go func() {
		_, err := server.Reader().Next(1) // blocks: no input
		blocked <- err
	}()
	waitFor(t, 5*time.Second, "first reader to block", func() bool {
		return server.(*connection).readerState.Load() == sideBusy
	})
	if _, err := server.Reader().Peek(1); !errors.Is(err, ErrConcurrentAccess) {
		t.Fatalf("second concurrent reader = %v; want ErrConcurrentAccess", err)
	}
	_ = server.Close()
	recvTimeout(t, blocked, time.Second, "first reader")
}

// TestCloseAfterPeerClosedReturnsNil: the library closes a connection whose
// peer closed once its input is read, but the user's own first Close still
// returns nil, as with a net.TCPConn.
func TestCloseAfterPeerClosedReturnsNil(t *testing.T) {
	checkNoFDLeak(t)
	server, client := connPair(t, "tcp")
	_, _ = server.Write([]byte("hi"))
	_ = server.Close()
	if got, err := io.ReadAll(client); err != nil || string(got) != "hi" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	waitFor(t, 5*time.Second, "library close", func() bool { return !client.IsActive() })
	if err := client.Close(); err != nil {
		t.Fatalf("first Close after the peer closed = %v; want nil", err)
	}
	if err := client.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v; want net.ErrClosed", err)
	}
}
