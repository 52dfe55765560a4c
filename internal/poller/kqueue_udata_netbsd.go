package poller

import "golang.org/x/sys/unix"

// setUdata stores op's table index in ev's udata, an integer on NetBSD (int64
// or int32 by architecture, hence the generic helper).
func setUdata(ev *unix.Kevent_t, op *FDOperator) {
	putIndex(&ev.Udata, op.index)
}

func putIndex[T ~int32 | ~int64](dst *T, index int32) { *dst = T(index) }

// udataOperator returns the operator ev's udata names, or nil.
func (p *Poller) udataOperator(ev *unix.Kevent_t) *FDOperator {
	return p.ops.get(int32(ev.Udata))
}
