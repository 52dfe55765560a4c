package conformance

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccb70390/netpoll"
)

// randomBytes returns n bytes that depend only on seed, so a failure can be
// replayed.
func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// firstDifference returns the first offset where got and want differ, or -1.
func firstDifference(got, want []byte) int {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return i
		}
	}
	if len(got) != len(want) {
		return min(len(got), len(want))
	}
	return -1
}

// checkTimeout fails the test unless err is what a deadline must produce: a
// net.Error whose Timeout is true, matching os.ErrDeadlineExceeded (as the
// standard library's conns do) and the library's own sentinel.
func checkTimeout(tb testing.TB, op string, err, sentinel error) {
	tb.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		tb.Errorf("%s = %v (%T); want a net.Error with Timeout() == true", op, err, err)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		tb.Errorf("%s = %v; want errors.Is(err, os.ErrDeadlineExceeded)", op, err)
	}
	if !errors.Is(err, sentinel) {
		tb.Errorf("%s = %v; want errors.Is(err, %v)", op, err, sentinel)
	}
}

// TestReadEOF pins the io.Reader contract that io.ReadAll, bufio and
// crypto/tls rely on: once the peer has closed and every byte was read, Read
// returns io.EOF itself (compared with ==), and keeps returning it.
func TestReadEOF(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, peer := newConn(t, r)
			want := randomBytes(10_000, 1)
			if err := conn.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
				t.Fatalf("SetReadDeadline = %v", err)
			}
			if _, err := peer.Write(want); err != nil {
				t.Fatalf("peer Write = %v", err)
			}
			if err := peer.Close(); err != nil {
				t.Fatalf("peer Close = %v", err)
			}
			var got []byte
			buf := make([]byte, 3000)
			var err error
			for i := 0; i < 1000 && err == nil; i++ {
				var n int
				n, err = conn.Read(buf)
				got = append(got, buf[:n]...)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("read %d bytes, first difference at %d; want the %d bytes sent", len(got), firstDifference(got, want), len(want))
			}
			if err != io.EOF {
				t.Fatalf("Read at end of input = %v (%T); want io.EOF itself", err, err)
			}
			if n, err := conn.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("Read after io.EOF = %d, %v; want 0, io.EOF", n, err)
			}
		})
	}
}

// TestLargeWriteThenClose sends 1 MiB and closes at once, many times, to a
// server whose OnRequest drains input with the nocopy Reader until ErrEOF.
// Every byte must arrive: the close must not overtake data still unread.
func TestLargeWriteThenClose(t *testing.T) {
	const size = 1 << 20
	const trials = 100
	const maxFailures = 3
	type result struct {
		data []byte
		err  error
	}
	type connState struct{ done atomic.Bool }
	type stateKey struct{}
	results := make(chan result, trials)
	onPrepare := func(netpoll.Connection) context.Context {
		return context.WithValue(context.Background(), stateKey{}, &connState{})
	}
	// drain reads until the peer's close is reported. It blocks in Peek while
	// no input is buffered, so it alone decides when the connection is done.
	drain := func(ctx context.Context, c netpoll.Connection) error {
		state, _ := ctx.Value(stateKey{}).(*connState)
		if state == nil {
			results <- result{err: errors.New("OnRequest ctx lacks the value OnPrepare returned")}
			return c.Close()
		}
		if state.done.Load() {
			return nil
		}
		r := c.Reader()
		var data []byte
		for {
			if n := r.Len(); n > 0 {
				b, err := r.Next(n)
				if err != nil {
					state.done.Store(true)
					results <- result{data, err}
					return c.Close()
				}
				data = append(data, b...)
				if err := r.Release(); err != nil {
					state.done.Store(true)
					results <- result{data, err}
					return c.Close()
				}
				continue
			}
			if _, err := r.Peek(1); err != nil {
				if errors.Is(err, netpoll.ErrEOF) {
					err = nil
				}
				state.done.Store(true)
				results <- result{data, err}
				return c.Close()
			}
		}
	}
	s := newServer(t, "tcp", drain, netpoll.WithOnPrepare(onPrepare), netpoll.WithReadTimeout(waitLimit))
	failures := 0
	for trial := range trials {
		want := randomBytes(size, int64(trial))
		peer, err := net.DialTimeout(s.network, s.addr, waitLimit)
		if err != nil {
			t.Fatalf("trial %d: Dial = %v", trial, err)
		}
		peer.SetWriteDeadline(time.Now().Add(waitLimit))
		_, werr := peer.Write(want)
		cerr := peer.Close()
		if werr != nil || cerr != nil {
			t.Fatalf("trial %d: peer Write = %v, Close = %v", trial, werr, cerr)
		}
		select {
		case res := <-results:
			if res.err != nil || !bytes.Equal(res.data, want) {
				failures++
				t.Errorf("trial %d: handler got %d bytes (first difference at %d), err %v; want %d bytes, ErrEOF",
					trial, len(res.data), firstDifference(res.data, want), res.err, size)
			}
		case <-time.After(waitLimit):
			t.Fatalf("trial %d: handler did not reach ErrEOF within %v", trial, waitLimit)
		}
		if failures >= maxFailures {
			t.Fatalf("stopped after %d failed trials of %d", failures, trial+1)
		}
	}
}

// deadlineOps are the two directions a deadline applies to.
var deadlineOps = []struct {
	name     string
	set      func(net.Conn, time.Time) error
	do       func(net.Conn) (int, error)
	sentinel error
}{
	{
		name:     "Read",
		set:      net.Conn.SetReadDeadline,
		do:       func(c net.Conn) (int, error) { return c.Read(make([]byte, 64)) },
		sentinel: netpoll.ErrReadTimeout,
	},
	{
		name:     "Write",
		set:      net.Conn.SetWriteDeadline,
		do:       func(c net.Conn) (int, error) { return c.Write([]byte("never sent")) },
		sentinel: netpoll.ErrWriteTimeout,
	},
}

// TestPastDeadline checks that a deadline already passed fails the call at
// once, before any byte moves, with a timeout error of every expected kind.
func TestPastDeadline(t *testing.T) {
	for _, r := range roles {
		for _, op := range deadlineOps {
			t.Run(r.name+"/"+op.name, func(t *testing.T) {
				conn, _ := newConn(t, r)
				if err := op.set(conn, time.Now().Add(-time.Second)); err != nil {
					t.Fatalf("Set%sDeadline = %v", op.name, err)
				}
				start := time.Now()
				n, err := op.do(conn)
				if elapsed := time.Since(start); elapsed > time.Second {
					t.Errorf("%s with a past deadline took %v; want it to fail at once", op.name, elapsed)
				}
				if n != 0 || err == nil {
					t.Fatalf("%s with a past deadline = %d, %v; want 0, a timeout", op.name, n, err)
				}
				checkTimeout(t, op.name, err, op.sentinel)
			})
		}
	}
}

// TestDeadlineWakesRead checks that moving the read deadline into the past
// wakes a Read that is already blocked, as net.Conn promises.
func TestDeadlineWakesRead(t *testing.T) {
	// blockWindow is how long Read must stay blocked with no input and no
	// deadline; it is an assertion, not a wait for a condition.
	const blockWindow = 50 * time.Millisecond
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, _ := newConn(t, r)
			done := make(chan error, 1)
			go func() {
				_, err := conn.Read(make([]byte, 64))
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("Read with no input and no deadline returned %v", err)
			case <-time.After(blockWindow):
			}
			if err := conn.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatalf("SetReadDeadline = %v", err)
			}
			select {
			case err := <-done:
				checkTimeout(t, "blocked Read", err, netpoll.ErrReadTimeout)
			case <-time.After(waitLimit):
				t.Fatalf("blocked Read still blocked %v after its deadline moved into the past", waitLimit)
			}
		})
	}
}

// TestTimeoutRecovery checks that a timeout is not fatal: after the deadline
// is extended the connection reads and writes as before.
func TestTimeoutRecovery(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name+"/Read", func(t *testing.T) {
			conn, peer := newConn(t, r)
			conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := conn.Read(make([]byte, 64))
			checkTimeout(t, "Read past its deadline", err, netpoll.ErrReadTimeout)
			if err := conn.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
				t.Fatalf("SetReadDeadline after a timeout = %v", err)
			}
			if _, err := peer.Write([]byte("ping")); err != nil {
				t.Fatalf("peer Write = %v", err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
				t.Fatalf("ReadFull after the deadline was extended = %q, %v; want \"ping\", <nil>", got, err)
			}
		})
		t.Run(r.name+"/Write", func(t *testing.T) {
			conn, peer := newConn(t, r)
			conn.SetWriteDeadline(time.Now().Add(-time.Second))
			_, err := conn.Write([]byte("lost"))
			checkTimeout(t, "Write past its deadline", err, netpoll.ErrWriteTimeout)
			if err := conn.SetWriteDeadline(time.Now().Add(waitLimit)); err != nil {
				t.Fatalf("SetWriteDeadline after a timeout = %v", err)
			}
			if n, err := conn.Write([]byte("pong")); n != 4 || err != nil {
				t.Fatalf("Write after the deadline was extended = %d, %v; want 4, <nil>", n, err)
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			peer.SetReadDeadline(time.Now().Add(waitLimit))
			if got, err := io.ReadAll(peer); err != nil || string(got) != "pong" {
				t.Fatalf("peer read %q, %v; want exactly \"pong\", <nil>", got, err)
			}
		})
	}
}

// TestConcurrentRead has several goroutines call Read on one connection at
// once. net.Conn serialises them: none may fail, and together they must see
// every byte exactly once.
func TestConcurrentRead(t *testing.T) {
	const readers = 4
	const size = 256 << 10
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, peer := newConn(t, r)
			want := randomBytes(size, 2)
			conn.SetReadDeadline(time.Now().Add(waitLimit))
			peerErr := make(chan error, 1)
			go func() {
				peer.SetWriteDeadline(time.Now().Add(waitLimit))
				_, err := peer.Write(want)
				if cerr := peer.Close(); err == nil {
					err = cerr
				}
				peerErr <- err
			}()
			chunks := make([][][]byte, readers)
			errs := make([]error, readers)
			var wg sync.WaitGroup
			for i := range readers {
				wg.Go(func() {
					buf := make([]byte, 1024)
					for range size {
						n, err := conn.Read(buf)
						if n > 0 {
							chunks[i] = append(chunks[i], bytes.Clone(buf[:n]))
						}
						if err != nil {
							errs[i] = err
							return
						}
					}
				})
			}
			wg.Wait()
			if err := <-peerErr; err != nil {
				t.Fatalf("peer Write/Close = %v", err)
			}
			// A reader that finds the input ended after another saw io.EOF
			// may get the closed error instead; whether io.EOF is sticky is
			// TestReadEOF's point, not this test's.
			sawEOF := false
			for i, err := range errs {
				switch {
				case err == io.EOF:
					sawEOF = true
				case err != nil && !errors.Is(err, net.ErrClosed):
					t.Errorf("reader %d: Read = %v; want data then io.EOF", i, err)
				}
			}
			if !sawEOF {
				t.Errorf("no reader got io.EOF at the end of input; errors %v", errs)
			}
			checkChunks(t, chunks, want)
		})
	}
}

// checkChunks checks that the chunks the readers got are the bytes of want,
// each exactly once: the totals and the count of every byte value match, and
// every chunk long enough to be placed is a run of want.
func checkChunks(tb testing.TB, chunks [][][]byte, want []byte) {
	tb.Helper()
	var got, expect [256]int
	for _, b := range want {
		expect[b]++
	}
	total := 0
	for _, perReader := range chunks {
		for _, c := range perReader {
			total += len(c)
			for _, b := range c {
				got[b]++
			}
			if len(c) >= 16 && !bytes.Contains(want, c) {
				tb.Errorf("a Read returned %d bytes that are not a run of the stream: corrupted", len(c))
			}
		}
	}
	if total != len(want) {
		tb.Fatalf("readers got %d bytes in all; want %d", total, len(want))
	}
	if got != expect {
		tb.Fatalf("readers got the right number of bytes but not the same bytes")
	}
}

// TestConcurrentWrite has several goroutines call Write on one connection at
// once. net.Conn serialises them: each Write must reach the peer whole, not
// interleaved with another, and in the order each writer issued them.
func TestConcurrentWrite(t *testing.T) {
	const writers = 4
	const records = 250
	const recordSize = 64
	record := func(writer, seq int) []byte {
		b := make([]byte, recordSize)
		b[0] = byte(writer)
		binary.BigEndian.PutUint32(b[1:5], uint32(seq))
		for i := 5; i < recordSize; i++ {
			b[i] = byte(writer*31 + seq + i)
		}
		return b
	}
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, peer := newConn(t, r)
			conn.SetWriteDeadline(time.Now().Add(waitLimit))
			peer.SetReadDeadline(time.Now().Add(waitLimit))
			peerErr := make(chan error, 1)
			go func() {
				next := make([]int, writers)
				buf := make([]byte, recordSize)
				for range writers * records {
					if _, err := io.ReadFull(peer, buf); err != nil {
						peerErr <- err
						return
					}
					w := int(buf[0])
					if w >= writers || !bytes.Equal(buf, record(w, next[w])) {
						peerErr <- errors.New("peer got a record that is torn, interleaved or out of order")
						return
					}
					next[w]++
				}
				peerErr <- nil
			}()
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for seq := range records {
						if n, err := conn.Write(record(w, seq)); n != recordSize || err != nil {
							errs[w] = err
							if err == nil {
								errs[w] = io.ErrShortWrite
							}
							return
						}
					}
				})
			}
			wg.Wait()
			for w, err := range errs {
				if err != nil {
					t.Errorf("writer %d: Write = %v; want nil", w, err)
				}
			}
			if err := <-peerErr; err != nil {
				t.Fatalf("peer: %v", err)
			}
		})
	}
}

// TestWriteBlocksAtDeadline writes to a peer that never reads. Writes must
// block once the socket is full and fail at the write deadline, rather than
// buffer without bound or block past it.
func TestWriteBlocksAtDeadline(t *testing.T) {
	const chunkSize = 64 << 10
	const maxChunks = 4096       // 256 MiB: far more than any socket buffer
	const maxAccepted = 64 << 20 // loopback socket buffers hold a few MiB
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, _ := newConn(t, r)
			chunk := randomBytes(chunkSize, 3)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			deadline := time.Now().Add(300 * time.Millisecond)
			conn.SetWriteDeadline(deadline)
			accepted := 0
			var err error
			for range maxChunks {
				var n int
				n, err = conn.Write(chunk)
				accepted += n
				if err != nil {
					break
				}
			}
			returned := time.Now()
			runtime.GC()
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("%d Writes of %d bytes to a peer that never reads all succeeded", maxChunks, chunkSize)
			}
			checkTimeout(t, "Write to a full socket", err, netpoll.ErrWriteTimeout)
			if late := returned.Sub(deadline); late > 2*time.Second {
				t.Errorf("Write returned %v after its deadline; want about at it", late)
			}
			if accepted > maxAccepted {
				t.Errorf("Writes accepted %d bytes for a peer that never reads; want at most %d", accepted, maxAccepted)
			}
			if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > maxAccepted {
				t.Errorf("heap grew by %d bytes while writing to a full socket; want at most %d", grown, maxAccepted)
			}
		})
	}
}

// TestClosedConn checks that after Close every method fails at once with an
// error that matches both net.ErrClosed (what net.Conn users test) and
// ErrConnClosed (what netpoll users test).
func TestClosedConn(t *testing.T) {
	const prompt = 2 * time.Second
	ops := []struct {
		name string
		do   func(netpoll.Connection) error
	}{
		{"Read", func(c netpoll.Connection) error { _, err := c.Read(make([]byte, 8)); return err }},
		{"Write", func(c netpoll.Connection) error { _, err := c.Write([]byte("x")); return err }},
		{"SetDeadline", func(c netpoll.Connection) error { return c.SetDeadline(time.Now().Add(time.Second)) }},
		{"SetReadDeadline", func(c netpoll.Connection) error { return c.SetReadDeadline(time.Now().Add(time.Second)) }},
		{"SetWriteDeadline", func(c netpoll.Connection) error { return c.SetWriteDeadline(time.Now().Add(time.Second)) }},
		{"Close", func(c netpoll.Connection) error { return c.Close() }},
		{"Reader.Next", func(c netpoll.Connection) error { _, err := c.Reader().Next(1); return err }},
		{"Writer.Flush", func(c netpoll.Connection) error {
			if _, err := c.Writer().WriteString("x"); err != nil {
				return err
			}
			return c.Writer().Flush()
		}},
	}
	for _, r := range roles {
		for _, op := range ops {
			t.Run(r.name+"/"+op.name, func(t *testing.T) {
				conn, _ := newConn(t, r)
				if err := conn.Close(); err != nil {
					t.Fatalf("first Close = %v", err)
				}
				done := make(chan error, 1)
				go func() { done <- op.do(conn) }()
				select {
				case err := <-done:
					if !errors.Is(err, net.ErrClosed) || !errors.Is(err, netpoll.ErrConnClosed) {
						t.Errorf("%s after Close = %v; want an error matching net.ErrClosed and ErrConnClosed", op.name, err)
					}
				case <-time.After(prompt):
					t.Fatalf("%s after Close still blocked after %v", op.name, prompt)
				}
			})
		}
	}
}

// TestCloseWakesRead checks that Close from another goroutine ends a blocked
// Read with an error matching net.ErrClosed and ErrConnClosed.
func TestCloseWakesRead(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, _ := newConn(t, r)
			done := make(chan error, 1)
			go func() {
				_, err := conn.Read(make([]byte, 8))
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("Read with no input returned %v before Close", err)
			case <-time.After(50 * time.Millisecond):
			}
			if err := conn.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) || !errors.Is(err, netpoll.ErrConnClosed) {
					t.Errorf("blocked Read after Close = %v; want an error matching net.ErrClosed and ErrConnClosed", err)
				}
			case <-time.After(waitLimit):
				t.Fatalf("blocked Read not woken within %v of Close", waitLimit)
			}
		})
	}
}

// TestReaderConcurrentAccess checks that the nocopy Reader, unlike Read,
// refuses a second concurrent user with ErrConcurrentAccess instead of
// sharing the buffer. The first user waits in Next(2) with one byte
// buffered; a Peek(1) from another goroutine would succeed if the Reader were
// free, so once the first is inside Next the second must be refused.
func TestReaderConcurrentAccess(t *testing.T) {
	for _, r := range roles {
		t.Run(r.name, func(t *testing.T) {
			conn, peer := newConn(t, r)
			conn.SetReadTimeout(waitLimit)
			if _, err := peer.Write([]byte("a")); err != nil {
				t.Fatalf("peer Write = %v", err)
			}
			if b, err := conn.Reader().Peek(1); err != nil || string(b) != "a" {
				t.Fatalf("Peek(1) = %q, %v; want \"a\", <nil>", b, err)
			}
			first := make(chan error, 1)
			go func() {
				// Our own Peek below may refuse this goroutine while it runs;
				// retry until this one is the user that waits.
				for range 10_000 {
					b, err := conn.Reader().Next(2)
					if errors.Is(err, netpoll.ErrConcurrentAccess) {
						continue
					}
					if err == nil && string(b) != "ab" {
						err = errors.New("Next(2) returned " + string(b) + "; want ab")
					}
					first <- err
					return
				}
				first <- errors.New("Next(2) refused 10000 times")
			}()
			// Half the read timeout, so that the first user is still
			// waiting when the loop gives up.
			refused := false
			for start := time.Now(); time.Since(start) < waitLimit/2; {
				_, err := conn.Reader().Peek(1)
				if errors.Is(err, netpoll.ErrConcurrentAccess) {
					refused = true
					break
				}
				if err != nil {
					t.Fatalf("second user's Peek(1) = %v; want ErrConcurrentAccess or \"a\"", err)
				}
				runtime.Gosched()
			}
			if _, err := peer.Write([]byte("b")); err != nil {
				t.Fatalf("peer Write = %v", err)
			}
			if err := <-first; err != nil {
				t.Errorf("first user's Next(2) = %v; want \"ab\"", err)
			}
			if !refused {
				t.Errorf("second user's Peek(1) never got ErrConcurrentAccess while Next(2) waited for %v", waitLimit/2)
			}
		})
	}
}
