package poller

import (
	"runtime"
	"sync/atomic"
	"time"
)

// An idle poller first lingers: it waits in the kernel (epoll_wait, ended
// within lingerMsec by a periodic timer, lingertick_linux.go; io_uring_enter
// with a timeout on that engine) while its goroutine keeps its P, because at
// light load the next event usually comes within that time and is then
// taken without the runtime's park and wake-up (about half the CPU per
// request at 10k req/s). Only when a whole tick passes without events does
// the poller park on the runtime's own poller, which frees the P.
//
// Holding the P has a victim, at GOMAXPROCS=1 above all: a goroutine of the
// same process that waits on Go's net or on a timer cannot run until the
// linger ends or sysmon takes the P. When that goroutine is what produces the
// poller's next event (a client in the same process, a proxy's upstream read
// through net), every linger runs to its end and the event follows at once
// when the P is freed. lingerPolicy sees exactly that and parks at once for
// a while: a linger that expired, then a park that lasted almost nothing.
// Measured with the in-process echo (BenchmarkEcho/netpoll/conns=1 -cpu 1):
// up to 1.2 ms a round trip with a fixed linger, about net's 30 µs with this.

// lingerPolicy is the poller goroutine's record of how its lingers went; it
// is owned by that goroutine. Times are nanoseconds on a monotonic clock.
type lingerPolicy struct {
	// offUntil is when lingering may resume after it was found to hold the
	// P from the event's own source; 0 when it is not off.
	offUntil int64
	// parkedAt is when the park that followed an expired linger began, 0 when
	// the current wait did not start that way.
	parkedAt int64
	// suppressed counts the times lingering was turned off; atomic because
	// a test reads it while the poller runs.
	suppressed atomic.Uint64
	// heldOff is how long lingering stays off after lingers held up a
	// goroutine (yielded); it doubles while lingers keep doing so.
	heldOff int64
	// heldScore weighs the recent hold-ups against the lingers that held
	// nobody up: a hold-up adds lingerHeldWeight, such a linger takes one
	// away. A hold-up that finds it above zero turns lingering off.
	heldScore int32
}

const (
	// lingerMsec is the linger timer's period: a linger ends at the first
	// tick after a whole period without events, so it lasts 1-2 periods.
	lingerMsec = 1
	// lingerVictimGap: a park after an expired linger that ends with events
	// sooner than this means the events were waiting for the P.
	lingerVictimGap = 100 * time.Microsecond
	// lingerOffFor is how long the poller then parks at once before it tries
	// a linger again; one expired linger per period is the most it loses.
	lingerOffFor = 50 * time.Millisecond
	// lingerYieldAfter: a linger that waited longer than this may have kept
	// a goroutine that became runnable meanwhile from the P (yieldAfterLinger).
	lingerYieldAfter = 50 * time.Microsecond
	// lingerHeldGap: the yield after such a linger taking longer than this
	// means another goroutine ran in it, one the linger had held up.
	lingerHeldGap = 10 * time.Microsecond
	// lingerOffMax bounds the doubling of the off time while lingers keep
	// holding goroutines up.
	lingerOffMax = 2 * time.Second
	// lingerHeldWeight: a hold-up turns lingering off only when another
	// came within this many lingers before it (see yielded).
	lingerHeldWeight = 16
)

// mayLinger reports whether the next idle wait may start with a linger.
func (l *lingerPolicy) mayLinger(now int64) bool { return now >= l.offUntil }

// mayLingerNow is mayLinger at the current time. It reads the clock only
// while lingering is off (offUntil is cleared once it has passed), since
// this runs before every idle wait and lingering is seldom off.
func (l *lingerPolicy) mayLingerNow() bool {
	if l.offUntil == 0 {
		return true
	}
	if !l.mayLinger(monoNow()) {
		return false
	}
	l.offUntil = 0
	return true
}

// expired records that a linger ran out without events and the poller parks.
func (l *lingerPolicy) expired(now int64) { l.parkedAt = now }

// parked records the end of a park with n events; it turns lingering off
// when the park followed an expired linger and ended almost at once.
func (l *lingerPolicy) parked(now int64, n int) {
	if l.parkedAt != 0 && n > 0 && now-l.parkedAt < int64(lingerVictimGap) {
		l.offUntil = now + int64(lingerOffFor)
		l.suppressed.Add(1)
	}
	l.parkedAt = 0
}

// yielded records the yield after a linger that waited (yieldAfterLinger),
// which took took nanoseconds up to now. A yield in which another goroutine
// ran means the linger kept it from the P: a goroutine whose timer fired
// during the linger, above all, which at GOMAXPROCS=1 can run only when the
// poller lets go. A Kitex mux client so waited for its rate limiter's timers
// and added 80 µs to its median latency and 600 to its p99 at 5k calls/s.
//
// One slow yield proves nothing, though. In this VM most of them had no
// goroutine to run (the runtime's count of runnable ones was 0 before the
// yield; the vCPU was likely away), about 2 a second at 10k req/s, and when
// each turned lingering off for 50 ms, one request in ten there went through
// the runtime's park instead of the linger; a Kitex mux server at 20k
// calls/s (12 slow yields a second) parked in 2 of 3 waits, at 3.2 system
// calls per call against 2.6, with the same p99. A goroutine that the
// lingers really hold up is held again and again, its timer firing anew, so
// lingering turns off when a hold-up follows another within lingerHeldWeight
// lingers (heldScore): 50 ms the first time and twice as long each time
// lingers hold one up again right after, up to 2 s. A process whose timers
// fire all the time so lingers seldom, and a run of lingers that hold nobody
// up resets the doubling.
func (l *lingerPolicy) yielded(now, took int64) {
	if took < int64(lingerHeldGap) {
		if l.heldScore > 0 {
			l.heldScore--
		} else {
			l.heldOff = 0
		}
		return
	}
	recent := l.heldScore > 0
	l.heldScore += lingerHeldWeight
	if !recent {
		return
	}
	l.heldScore = lingerHeldWeight
	l.heldOff = min(max(2*l.heldOff, int64(lingerOffFor)), int64(lingerOffMax))
	l.offUntil = now + l.heldOff
	l.suppressed.Add(1)
}

// lingerBegins returns the start of a linger for yieldAfterLinger: the
// time, where the lingers can hold every P (GOMAXPROCS=1; otherwise one P
// stays free, see lingerSlots), else 0, and no clock is read.
func lingerBegins() int64 {
	if !lingerHoldsEveryP.Load() {
		return 0
	}
	return monoNow()
}

// yieldAfterLinger runs after a linger that began at began (lingerBegins):
// if it waited long enough to have held a goroutine up, the poller yields
// once and lets lingerPolicy.yielded see whether one ran.
func (p *Poller) yieldAfterLinger(began int64) {
	if began == 0 {
		return
	}
	now := monoNow()
	if now-began < int64(lingerYieldAfter) {
		return
	}
	runtime.Gosched()
	end := monoNow()
	p.linger.yielded(end, end-now)
}

// monoStart anchors monoNow.
var monoStart = time.Now()

// monoNow is a monotonic clock in nanoseconds (a vDSO read, no system call).
func monoNow() int64 { return int64(time.Since(monoStart)) }

// A lingering poller holds a P, and while every P is held no other
// goroutine of the process runs (a timer's, one woken by Go's net) until a
// tick ends a linger: with SetNumLoops(GOMAXPROCS) at light load a 200 µs
// sleep woke 200 µs late at the median. So with GOMAXPROCS > 1 at most
// GOMAXPROCS-1 pollers linger at once and the others park; one P always
// stays free. At GOMAXPROCS=1 the one poller may linger (lingerPolicy
// handles the goroutines it holds up).
var (
	// lingering counts the pollers in a linger, across all Managers.
	lingering atomic.Int32
	// lingerSlots is max(1, GOMAXPROCS-1), refreshed by refreshLingerSlots
	// (GOMAXPROCS takes the scheduler's lock, too dear for every wait).
	lingerSlots atomic.Int32
	// lingerHoldsEveryP is GOMAXPROCS == 1, refreshed with lingerSlots.
	lingerHoldsEveryP atomic.Bool
)

func init() { refreshLingerSlots() }

// refreshLingerSlots reads GOMAXPROCS again. Pollers call it when a linger
// runs out (an idle tick, rare under load), so a change of GOMAXPROCS shows
// by the next idle period.
func refreshLingerSlots() {
	procs := runtime.GOMAXPROCS(0)
	lingerSlots.Store(int32(max(1, procs-1)))
	lingerHoldsEveryP.Store(procs == 1)
}

// takeLingerSlot reports whether the caller may linger now; a caller that
// got one gives it back with releaseLingerSlot when the linger ends.
func takeLingerSlot() bool {
	if lingering.Add(1) > lingerSlots.Load() {
		lingering.Add(-1)
		return false
	}
	return true
}

func releaseLingerSlot() { lingering.Add(-1) }
