//go:build unix

package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccb70390/netpoll"
)

// server holds the handlers of a run.
type server struct{ run *run }

// sconn is what a server connection's handler knows about it.
type sconn struct {
	conn netpoll.Connection
	run  *run

	// id is the connection's canary id, learned from its first unit.
	// Atomic: the close callback reads it.
	id atomic.Uint32

	// inRequest is true while OnRequest runs; the close callback checks it.
	inRequest atomic.Bool

	// Owned by the handler.
	rng           *rand.Rand
	inOff, outOff int64 // stream offsets of the next input and output bytes
	smallSndbuf   bool
	writeTimeout  bool // this connection flushes under a write timeout
}

type sconnKey struct{}

func (s *server) onConnect(ctx context.Context, c netpoll.Connection) context.Context {
	sc := &sconn{conn: c, run: s.run}
	s.run.stats.Accepted.Add(1)
	_ = c.AddCloseCallback(func(netpoll.Connection) error {
		s.run.stats.CloseCallbacks.Add(1)
		if sc.inRequest.Load() {
			s.run.failCallback(fmt.Errorf("conn %d: close callback ran while OnRequest was still running", sc.id.Load()))
		}
		return nil
	})
	return context.WithValue(ctx, sconnKey{}, sc)
}

func (s *server) onRequest(ctx context.Context, _ netpoll.Connection) error {
	sc := ctx.Value(sconnKey{}).(*sconn)
	sc.inRequest.Store(true)
	defer sc.inRequest.Store(false)
	s.run.stats.Requests.Add(1)
	if sc.id.Load() == 0 {
		head, err := sc.conn.Reader().Peek(UnitSize)
		if err != nil {
			return err
		}
		id, ok := Decode(head)
		if !ok {
			s.run.fail(fmt.Errorf("server conn: first unit % x is not a canary", head))
			return sc.conn.Close()
		}
		sc.id.Store(id)
		sc.rng = rand.New(rand.NewPCG(s.run.cfg.Seed, uint64(id)))
		sc.writeTimeout = sc.rng.IntN(8) == 0
	}
	return sc.serve()
}

// piece is a slice of input the handler holds, and its stream offset.
type piece struct {
	p   []byte
	off int64
	how string
}

// serve handles one OnRequest call: it takes the buffered input as slices,
// checks them, then plays one scenario chosen at random, and re-checks every
// slice it still holds after anything that could have freed it.
func (sc *sconn) serve() error {
	st := &sc.run.stats
	held, err := sc.take()
	if err != nil || len(held) == 0 {
		return err
	}
	idle := sc.run.cfg.IdleTimeout
	switch roll := sc.rng.IntN(100); {
	case roll < 30: // answer at once
	case roll < 50: // hold across the idle timeout, a reply half built
		return sc.holdAndReply(held, sc.holdTime(idle), false)
	case roll < 60: // hold while another goroutine closes the connection
		d := sc.holdTime(idle)
		after := time.Duration(sc.rng.Int64N(int64(d) + 1))
		st.ForeignCloses.Add(1)
		sc.run.tasks.Go(func() {
			sc.run.pause(after)
			_ = sc.conn.Close()
		})
		return sc.holdAndReply(held, d, false)
	case roll < 72:
		return sc.failFlush(held)
	case roll < 82:
		held = sc.readTimeout(held)
	case roll < 90: // hold, then close with the reply unsent
		return sc.holdAndReply(held, sc.holdTime(idle), true)
	default: // a short hold
		sc.hold(time.Duration(sc.rng.Int64N(int64(20 * time.Millisecond))))
	}
	sc.recheck(held, "after the handler's work")
	return sc.reply(held, nil, 0)
}

// take consumes the buffered input in one to three slices, by Next or by
// Peek and Skip, and checks each.
func (sc *sconn) take() ([]piece, error) {
	r := sc.conn.Reader()
	n := r.Len()
	var held []piece
	for parts := 1 + sc.rng.IntN(3); n > 0; parts-- {
		k := n
		if parts > 1 {
			k = 1 + sc.rng.IntN(n)
		}
		var p []byte
		var err error
		how := "Next slice"
		if sc.rng.IntN(4) == 0 {
			how = "Peek slice"
			if p, err = r.Peek(k); err == nil {
				err = r.Skip(k)
			}
			sc.run.stats.PeekSlices.Add(1)
		} else {
			p, err = r.Next(k)
			sc.run.stats.NextSlices.Add(1)
		}
		if err != nil {
			return held, err
		}
		sc.check(p, sc.inOff, how)
		held = append(held, piece{p, sc.inOff, how})
		sc.inOff += int64(k)
		n -= k
	}
	return held, nil
}

// check records a failure if p is not this connection's canary from off.
func (sc *sconn) check(p []byte, off int64, how string) {
	sc.run.stats.BytesChecked.Add(int64(len(p)))
	sc.run.fail(CheckStream(p, sc.id.Load(), off, "server "+how+" at stream"))
}

// recheck checks the held slices again, after something that may have let
// their memory go.
func (sc *sconn) recheck(held []piece, when string) {
	for _, h := range held {
		sc.run.stats.Rechecks.Add(1)
		sc.check(h.p, h.off, h.how+" "+when+",")
	}
}

// holdTime is how long a handler holds its memory: up to twice the idle
// timeout, so about half the holds outlast it.
func (sc *sconn) holdTime(idle time.Duration) time.Duration {
	return time.Duration(sc.rng.Int64N(int64(2 * idle)))
}

// hold is the handler at work without I/O.
func (sc *sconn) hold(d time.Duration) {
	sc.run.stats.Holds.Add(1)
	if d >= sc.run.cfg.IdleTimeout {
		sc.run.stats.HoldsPastIdle.Add(1)
	}
	sc.run.pause(d)
}

// holdAndReply Mallocs part of the reply, holds everything for d, then
// fills the Malloc buffer and re-checks it and the slices. With closeFirst
// the handler closes the connection instead of replying.
func (sc *sconn) holdAndReply(held []piece, d time.Duration, closeFirst bool) error {
	w := sc.conn.Writer()
	size := 8 + sc.rng.IntN(12000)
	buf, err := w.Malloc(size)
	if err != nil {
		return err
	}
	at := sc.outOff
	sc.outOff += int64(size)
	sc.hold(d)
	Fill(buf, sc.id.Load(), at)
	sc.recheck(held, "held across a hold")
	if closeFirst {
		sc.run.pause(time.Millisecond)
		sc.check(buf, at, "Malloc buffer filled after a hold")
		sc.run.stats.HandlerCloses.Add(1)
		return sc.conn.Close()
	}
	return sc.reply(held, buf, at)
}

// reply echoes the held slices after any Malloc'd part (buf, at stream
// offset at), re-checks buf just before Flush, flushes and releases.
func (sc *sconn) reply(held []piece, buf []byte, at int64) error {
	if err := sc.echo(held); err != nil {
		return err
	}
	if buf != nil {
		sc.run.stats.Mallocs.Add(1)
		sc.check(buf, at, "Malloc buffer just before Flush")
	}
	sc.run.stats.Flushes.Add(1)
	if err := sc.conn.Writer().Flush(); err != nil {
		return err
	}
	return sc.conn.Reader().Release()
}

// echo writes the held slices back with WriteBinary, each trimmed so that
// it continues the output stream's canary: large ones are referenced, not
// copied.
func (sc *sconn) echo(held []piece) error {
	w := sc.conn.Writer()
	for _, h := range held {
		k := int(((sc.outOff-h.off)%UnitSize + UnitSize) % UnitSize)
		if k >= len(h.p) {
			continue
		}
		p := h.p[k:]
		if len(p) >= netpoll.BinaryInplaceThreshold {
			sc.run.stats.ZeroCopyWrites.Add(1)
		}
		if _, err := w.WriteBinary(p); err != nil {
			return err
		}
		sc.outOff += int64(len(p))
	}
	return nil
}

// failFlush is the failed-Flush recipe: a small send buffer, a lot of
// output ahead of the referenced input slices, a write deadline a few
// milliseconds away; if Flush fails, Release, let others run, extend the
// deadline and Flush again. A connection in write-timeout mode uses a
// write timeout instead, which closes it, and checks its slices after.
func (sc *sconn) failFlush(held []piece) error {
	st := &sc.run.stats
	if !sc.smallSndbuf {
		sc.smallSndbuf = true
		if fc, ok := sc.conn.(interface{ Fd() int }); ok {
			_ = syscall.SetsockoptInt(fc.Fd(), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096)
		}
	}
	w := sc.conn.Writer()
	size := (32 + sc.rng.IntN(224)) << 10
	buf, err := w.Malloc(size)
	if err != nil {
		return err
	}
	Fill(buf, sc.id.Load(), sc.outOff)
	sc.outOff += int64(size)
	if err := sc.echo(held); err != nil {
		return err
	}
	wait := time.Duration(5+sc.rng.IntN(25)) * time.Millisecond
	if sc.writeTimeout {
		st.WriteTimeouts.Add(1)
		_ = sc.conn.SetWriteTimeout(wait)
	} else {
		_ = sc.conn.SetWriteDeadline(time.Now().Add(wait))
	}
	st.Flushes.Add(1)
	err = w.Flush()
	if sc.writeTimeout {
		_ = sc.conn.SetWriteTimeout(0)
	}
	if err == nil {
		_ = sc.conn.SetWriteDeadline(time.Time{})
		return sc.conn.Reader().Release()
	}
	if !isTimeout(err) {
		return err
	}
	st.FlushFailures.Add(1)
	if sc.writeTimeout {
		// The timeout closed the connection; the handler still holds
		// its slices, so they must still be its own.
		sc.hold(time.Duration(sc.rng.Int64N(int64(100 * time.Millisecond))))
		sc.recheck(held, "after a write-timeout close")
		return err
	}
	_ = sc.conn.Reader().Release() // the documented order: WriteBinary → Flush → Release
	sc.hold(time.Duration(sc.rng.Int64N(int64(200 * time.Millisecond))))
	_ = sc.conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
	st.FlushRetries.Add(1)
	err = w.Flush()
	_ = sc.conn.SetWriteDeadline(time.Time{})
	return err
}

// readTimeout asks for more input than the client sent under a short read
// timeout. Next may succeed if more came; either way the held slices must
// survive the failed wait.
func (sc *sconn) readTimeout(held []piece) []piece {
	r := sc.conn.Reader()
	_ = sc.conn.SetReadTimeout(time.Duration(5+sc.rng.IntN(30)) * time.Millisecond)
	defer sc.conn.SetReadTimeout(0)
	want := r.Len() + 1 + sc.rng.IntN(4096)
	p, err := r.Next(want)
	if err != nil {
		if errors.Is(err, netpoll.ErrReadTimeout) {
			sc.run.stats.ReadTimeouts.Add(1)
		}
		sc.recheck(held, "after a failed Next")
		return held
	}
	sc.run.stats.NextSlices.Add(1)
	sc.check(p, sc.inOff, "Next slice after a read timeout")
	held = append(held, piece{p, sc.inOff, "Next slice"})
	sc.inOff += int64(want)
	return held
}

// isTimeout reports whether err is a net.Error timeout.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
