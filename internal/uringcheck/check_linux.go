package uringcheck

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ccb70390/netpoll/internal/sys"
)

// eofWait is how long a transfer waits for the final completion after its
// writer has closed; a working kernel posts it within microseconds.
// transferWait bounds a whole transfer, for a receive that stops taking
// input (the writer then never finishes).
const (
	eofWait      = 2 * time.Second
	transferWait = 30 * time.Second
)

// Run makes transfers of transferSize bytes over fresh socket pairs of
// network ("unix" or "tcp"), each read by one multishot receive into a
// provided-buffer ring set up as the io_uring engine sets up its own, and
// counts the transfers whose receive did not complete with the EOF.
func Run(network string, transfers int) (Result, error) {
	if network != "unix" && network != "tcp" {
		return Result{}, fmt.Errorf("network %q: want unix or tcp", network)
	}
	ring, err := sys.UringSetup(256, 4096, sys.UringSetupSubmitAll|sys.UringSetupCoopTaskrun)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	bufs, err := ring.RegisterBufRing(0, 512, 2048, false)
	if err != nil {
		ring.Close()
		return Result{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	defer func() {
		ring.Close()
		bufs.Unmap() // after the ring: the kernel no longer writes into them
	}()
	c := &checker{ring: ring, bufs: bufs}
	var res Result
	for i := range transfers {
		lost, err := c.transfer(network, i)
		if err != nil {
			return res, err
		}
		res.Transfers++
		if lost {
			res.LostEOF++
		}
	}
	return res, nil
}

// checker is a ring and its buffers, used by one goroutine.
type checker struct {
	ring   *sys.Ring
	bufs   *sys.BufRing
	sqTail uint32
}

// transfer streams transferSize bytes through a new pair and reports
// whether the receive lost the EOF. A receive that lost it stays armed
// until Run closes the ring; each transfer has its own user_data, so its
// completions are never taken for a later transfer's.
func (c *checker) transfer(network string, id int) (lost bool, err error) {
	a, b, err := socketPair(network)
	if err != nil {
		return false, err
	}
	defer unix.Close(a)
	userData := uint64(id) + 1
	if err := c.receive(a, userData); err != nil {
		unix.Close(b)
		return false, err
	}
	var sent atomic.Int64
	writeErr := make(chan error, 1)
	go func() { writeErr <- stream(b, &sent) }()

	got, done := 0, false
	deadline := time.Time{}
	stall := time.Now().Add(transferWait)
	for !done {
		if time.Now().After(stall) {
			return false, fmt.Errorf("%s transfer %d: stalled, %d bytes received in %v", network, id, got, transferWait)
		}
		select {
		case err := <-writeErr:
			if err != nil {
				return false, err
			}
			deadline = time.Now().Add(eofWait)
		default:
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		n, eof, again, err := c.reap(userData)
		if err != nil {
			return false, err
		}
		got += n
		done = eof
		if again {
			if err := c.receive(a, userData); err != nil {
				return false, err
			}
		}
		if n == 0 && !eof {
			time.Sleep(20 * time.Microsecond) // polling the ring, bounded by deadline
		}
	}
	if done && got != int(sent.Load()) {
		return false, fmt.Errorf("%s transfer %d: received %d bytes of %d", network, id, got, sent.Load())
	}
	return !done, nil
}

// receive queues and submits a multishot receive on fd.
func (c *checker) receive(fd int, userData uint64) error {
	r := c.ring
	sqe := &r.SQEs[c.sqTail&r.SQMask]
	*sqe = sys.UringSQE{}
	c.sqTail++
	sqe.Opcode = sys.UringOpRecv
	sqe.Fd = int32(fd)
	sqe.Ioprio = sys.UringRecvMultishot
	sqe.Flags = sys.UringSQEBufferSelect
	sqe.UserData = userData
	atomic.StoreUint32(r.SQTail, c.sqTail)
	_, err := r.Enter(1, 0, 0)
	return err
}

// reap takes the completions in the ring (running the task work that posts
// them first): the bytes of userData's receive, whether it ended with the
// EOF, and whether it ended early (ENOBUFS) and must be armed again.
// Completions of earlier transfers' receives only give their buffers back.
func (c *checker) reap(userData uint64) (n int, eof, again bool, err error) {
	r := c.ring
	if _, err := r.Enter(0, 0, sys.UringEnterGetEvents); err != nil && !errors.Is(err, unix.EINTR) {
		return 0, false, false, err
	}
	head, tail := atomic.LoadUint32(r.CQHead), atomic.LoadUint32(r.CQTail)
	for ; head != tail; head++ {
		cqe := r.CQEs[head&r.CQMask]
		if cqe.Flags&sys.UringCQEFBuffer != 0 {
			if cqe.UserData == userData && cqe.Res > 0 {
				n += int(cqe.Res)
			}
			c.bufs.Provide(uint16(cqe.Flags >> sys.UringCQEBufferShift))
		}
		if cqe.UserData != userData || cqe.Flags&sys.UringCQEFMore != 0 {
			continue
		}
		switch {
		case cqe.Res == 0:
			eof = true
		case cqe.Res == -int32(unix.ENOBUFS) || cqe.Res > 0:
			again = true
		default:
			err = fmt.Errorf("receive: %w", unix.Errno(-cqe.Res))
		}
	}
	atomic.StoreUint32(r.CQHead, head)
	return n, eof, again, err
}

// stream writes transferSize bytes to fd in writes of 1 to 1,024 bytes, then
// closes it.
func stream(fd int, sent *atomic.Int64) error {
	defer unix.Close(fd)
	var buf [1024]byte
	total := 0
	for total < transferSize {
		k, err := unix.Write(fd, buf[:1+total*7%len(buf)])
		if err == unix.EAGAIN {
			time.Sleep(20 * time.Microsecond) // the reader drains the socket
			continue
		}
		if err != nil {
			return err
		}
		total += k
		sent.Store(int64(total))
	}
	return nil
}

// socketPair returns a connected non-blocking pair: a unix socket pair, or
// two ends of a loopback TCP connection.
func socketPair(network string) (a, b int, err error) {
	if network == "unix" {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, 0, err
		}
		return fds[0], fds[1], nil
	}
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, 0, err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return 0, 0, err
	}
	addr, err := unix.Getsockname(ln)
	if err != nil {
		return 0, 0, err
	}
	if b, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return 0, 0, err
	}
	if err := unix.Connect(b, addr); err != nil && err != unix.EINPROGRESS {
		unix.Close(b)
		return 0, 0, err
	}
	if a, _, err = unix.Accept4(ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC); err != nil {
		unix.Close(b)
		return 0, 0, err
	}
	return a, b, nil
}
