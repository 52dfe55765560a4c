package measure

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The open loop's call slots are released by a pacer that waits on a
// periodic timerfd through Go's network poller, not by time.Sleep in each
// caller. A sleeping goroutine's timer fires late by up to a millisecond
// when the process's only P is idle: the runtime then blocks in epoll_wait,
// whose time-out is whole milliseconds (on this machine time.Sleep(100µs)
// took 1.09 ms at GOMAXPROCS=1 and 2; see ../../timerlate). So the callers woke in bunches of
// rate/1000, unless the client's network library kept the runtime awake
// (cloudwego/netpoll's poller blocks in epoll_wait in a system call, and the
// sysmon thread then checks the timers every 20 µs, at about twice the
// client's CPU per call). The load offered to the server then depended on
// the client's library: bunched for one, even for the other. A timerfd's
// expiry wakes that epoll_wait at once, whoever the client's library is.

// pacer releases open-loop slots at fixed intervals: each slot is the time it
// was released, from which its call's latency counts.
type pacer struct {
	file  *os.File        // the timerfd, non-blocking, polled by Go's poller
	raw   syscall.RawConn // file's, read in one loop (see run)
	slots chan time.Time  // released slots, waiting for a free caller
}

// startPacer arms a timerfd that expires every perSlot from now and starts
// releasing one slot per expiry until end; the slots channel is closed then.
// The channel holds every slot of the run (up to maxQueued), so that the
// pacer never waits for a caller: a slot no caller was free to take waits in
// it, and that wait counts in its latency.
func startPacer(perSlot time.Duration, end time.Time) (*pacer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("measure: timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pacer-timerfd") // non-blocking: polled, not a blocked thread
	spec := unix.ItimerSpec{Interval: unix.NsecToTimespec(int64(perSlot)), Value: unix.NsecToTimespec(int64(perSlot))}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		f.Close()
		return nil, fmt.Errorf("measure: timerfd_settime: %w", err)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("measure: timerfd: %w", err)
	}
	const maxQueued = 1 << 20
	queued := min(int(time.Until(end)/perSlot)+1, maxQueued)
	p := &pacer{file: f, raw: raw, slots: make(chan time.Time, max(queued, 1))}
	go p.run(end)
	return p, nil
}

// run releases a slot for each expiry until end, then closes the timerfd and
// the slots channel. Expiries that passed while the pacer was not running
// (the client's P was busy) are released together, at the time it read them.
//
// The whole run is one RawConn.Read: its function reads after each wake-up
// and returns false to wait for the next expiry. A read per Read call (as
// os.File.Read does) would cost two system calls per slot, the first failing
// with EAGAIN, because each call resets the poller's readiness; skipping that
// first read would hang, since a periodic timerfd arms its next expiry only
// when it is read, so an expiry whose readiness was reset would never be
// followed by another.
func (p *pacer) run(end time.Time) {
	defer close(p.slots)
	defer p.file.Close()
	var buf [8]byte
	p.raw.Read(func(fd uintptr) bool {
		_, err := unix.Read(int(fd), buf[:])
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			return true
		}
		now := time.Now()
		if !now.Before(end) {
			return true
		}
		for n := binary.NativeEndian.Uint64(buf[:]); n > 0; n-- {
			p.slots <- now
		}
		return false
	})
}
