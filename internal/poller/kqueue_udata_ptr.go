//go:build darwin || dragonfly || freebsd || openbsd

package poller

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// setUdata stores a pointer to op in ev's udata, which is a pointer on these
// systems. The pointer stays valid: operators live in chunks the poller keeps
// forever. An integer tag cast to a pointer would look like a heap pointer to
// the garbage collector, which may crash on it, so no generation rides along;
// deferred reuse (operatorTable) and the odd generation of a freed operator
// stand in for it.
func setUdata(ev *unix.Kevent_t, op *FDOperator) {
	ev.Udata = (*byte)(unsafe.Pointer(op))
}

// udataOperator returns the operator ev's udata names, or nil.
func (p *Poller) udataOperator(ev *unix.Kevent_t) *FDOperator {
	return (*FDOperator)(unsafe.Pointer(ev.Udata))
}
