package poller

import (
	"fmt"

	"github.com/ccb70390/netpoll/internal/sys"
)

// Control changes the registration of op; see [Poll.Control] and the
// PollEvent values. The new interest is computed from the one kept in op, so a
// change that leaves it as it is costs no system call. Safe for concurrent use.
func (p *Poller) Control(op *FDOperator, event PollEvent) error {
	if op == nil || op.poller != p {
		return ErrForeignOperator
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	p.fdMu.RLock()
	defer p.fdMu.RUnlock()
	if p.fdClosed {
		return fmt.Errorf("netpoll: control: %w", ErrClosed)
	}
	if event == PollDetach {
		_, err := p.detachLocked(op)
		return err
	}
	next, err := nextInterest(op, event)
	if err != nil {
		return err
	}
	gen := op.publish()
	if op.registered && next == op.interest {
		return nil
	}
	if err := p.arm(op, gen, op.interest, next, op.registered); err != nil {
		return err
	}
	op.interest, op.registered = next, true
	return nil
}

// nextInterest is the interest op has after event. Only PollReadable and
// PollWritable may register an operator: the others on a detached operator
// would register an fd its owner may already have closed.
func nextInterest(op *FDOperator, event PollEvent) (interest, error) {
	switch event {
	case PollReadable:
		return interestRead, nil
	case PollWritable:
		return interestWrite, nil
	}
	if !op.registered {
		return 0, fmt.Errorf("netpoll: control %d: %w", event, ErrDetached)
	}
	switch event {
	case PollR2RW:
		return op.interest | interestWrite, nil
	case PollRW2R:
		return op.interest &^ interestWrite, nil
	case PollPauseRead:
		return op.interest &^ interestRead, nil
	case PollResumeRead:
		return op.interest | interestRead, nil
	}
	return 0, fmt.Errorf("netpoll: unknown poll event %d", event)
}

// detachLocked removes op's registration and moves its generation on, so the
// events of the old registration still in a batch are dropped. It reports
// whether op was registered. Called with op.mu and fdMu (shared) held.
func (p *Poller) detachLocked(op *FDOperator) (bool, error) {
	if !op.registered {
		return false, nil
	}
	err := p.disarm(op, op.interest)
	op.interest, op.registered = 0, false
	op.gen.Add(2)
	return true, err
}

// handle runs op's callbacks for one event, in order: read (also on a hang-up,
// so pending data and the EOF are read), write, hang-up. gen is the generation
// the event was checked against; a callback that detaches or frees op ends the
// sequence.
func (p *Poller) handle(op *FDOperator, gen uint32, readable, writable, hup bool) {
	if readable && (!p.handleRead(op) || op.gen.Load() != gen) {
		return
	}
	if writable && (!p.handleWrite(op) || op.gen.Load() != gen) {
		return
	}
	if hup {
		if op.reads() {
			// An owner that reads for itself decides when to let go: a peer's
			// half-close (EPOLLRDHUP) still leaves input to read and output to
			// send, so only report it.
			if op.owner != nil {
				op.owner.OnHangup(p)
			} else if op.OnHup != nil {
				op.OnHup(p)
			}
			return
		}
		p.hangUp(op)
	}
}

// handleRead runs OnRead or the Inputs path. It returns false if op was hung up.
func (p *Poller) handleRead(op *FDOperator) bool {
	if op.owner != nil {
		op.owner.OnReadable(p) // the owner acts on its own errors
		return true
	}
	if op.OnRead != nil {
		op.OnRead(p) // the owner acts on its own errors
		return true
	}
	if op.Inputs == nil {
		return true
	}
	rs := op.Inputs(p.vs)
	n, err := sys.Readv(op.FD, rs, p.iovs)
	p.clearScratch(len(rs))
	switch {
	case n > 0:
		if op.InputAck(n) != nil {
			p.hangUp(op)
			return false
		}
		return true
	case err == errAgain:
		return true
	default: // EOF or a read error
		p.hangUp(op)
		return false
	}
}

// handleWrite runs OnWrite or the Outputs path. It returns false if op was
// hung up.
func (p *Poller) handleWrite(op *FDOperator) bool {
	if op.owner != nil {
		op.owner.OnWritable(p) // the owner acts on its own errors
		return true
	}
	if op.OnWrite != nil {
		op.OnWrite(p) // the owner acts on its own errors
		return true
	}
	if op.Outputs == nil {
		return true
	}
	rs, _ := op.Outputs(p.vs)
	n, err := sys.Writev(op.FD, rs, p.iovs)
	p.clearScratch(len(rs))
	if err == errAgain {
		return true
	}
	if err != nil || op.OutputAck(n) != nil {
		p.hangUp(op)
		return false
	}
	return true
}

// hangUp detaches op and calls OnHup, once per registration: a second report
// of the same hang-up (kqueue sends one per filter) finds op detached.
func (p *Poller) hangUp(op *FDOperator) {
	op.mu.Lock()
	p.fdMu.RLock()
	// A failed delete leaves nothing to do: the fd is going away either way.
	detached, _ := p.detachLocked(op)
	p.fdMu.RUnlock()
	op.mu.Unlock()
	if !detached {
		return
	}
	if op.owner != nil {
		op.owner.OnHangup(p)
	} else if op.OnHup != nil {
		op.OnHup(p)
	}
}

// clearScratch drops the scratch's references to the owner's buffers, so a
// released buffer is not kept alive until the next event.
func (p *Poller) clearScratch(n int) {
	clear(p.vs[:min(n, len(p.vs))])
}
