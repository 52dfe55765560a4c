package netpoll

// The handler protocol. The poller never calls user code: it counts input
// events in pending, and the goroutine that moves pending from zero hands
// c.handle to the runner. handle runs OnConnect once, then OnRequest while
// unread input remains and the handler consumes it, then tries to move
// pending back to the value it saw; if more events came meanwhile it loops.
// So OnRequest never runs twice at once, and no event is lost between the
// handler's last look and its return.

// kickHandler starts the handler unless it is running.
func (c *connection) kickHandler() {
	if c.pending.Add(1) == 1 {
		runHandler(c)
	}
}

// handle is the handler goroutine's body. It holds the connection while it
// runs (see hold): a close meanwhile wakes whatever the handler waits for,
// but frees nothing and runs no close callback until the handler returns.
func (c *connection) handle() {
	if !c.hold() {
		return
	}
	defer c.release(false)
	for {
		seen := c.pending.Load()
		if c.connectPending.Load() {
			// Cleared only once OnConnect returned: until then the peer's
			// close leaves OnDisconnect to us (see startDisconnect).
			c.runOnConnect()
			c.connectPending.Store(false)
			if c.inputEnded() {
				c.startDisconnect()
			}
		}
		c.serveInput()
		if c.inputEnded() {
			// The poller started OnDisconnect at the peer's FIN unless
			// OnConnect was running; a layer's own end (TLS close_notify)
			// is found here. startDisconnect runs it once either way.
			c.startDisconnect()
			if c.finishAfterPeerClose() {
				return
			}
		}
		if c.closingStarted() {
			return
		}
		if c.pending.CompareAndSwap(seen, 0) {
			return
		}
	}
}

func (c *connection) runOnConnect() {
	onConnect := c.onConnect.Load()
	if onConnect == nil {
		return
	}
	ctx := *c.ctx.Load()
	c.runCallback("OnConnect", func() {
		ctx = (*onConnect)(ctx, c.owner)
	})
	if ctx != nil {
		c.ctx.Store(&ctx)
	}
}

// serveInput calls OnRequest while unread input remains and either the last
// call consumed some or new input arrived, so a handler that waits for more
// bytes does not make the library spin. Under a layer, new input is what
// the layer made of the socket's (refillInput).
func (c *connection) serveInput() {
	for !c.closingStarted() {
		c.refillInput()
		onRequest := c.onRequest.Load()
		before := c.inputBuffer.Len()
		if onRequest == nil || before == 0 {
			return
		}
		events := c.pending.Load()
		ctx := *c.ctx.Load()
		if !c.runCallback("OnRequest", func() { _ = (*onRequest)(ctx, c.owner) }) {
			return
		}
		after := c.inputBuffer.Len()
		if c.layer != nil {
			c.refillInput()
			if after >= before && c.inputBuffer.Len() == after {
				return
			}
			continue
		}
		if after >= before && c.pending.Load() == events {
			return
		}
	}
}

// refillInput has the layer, if any, move what the socket brought into the
// user's input, unless a reader elsewhere holds the read side (it refills
// for itself). A layer's failure closes the connection and is the next
// read's error.
func (c *connection) refillInput() {
	if c.layer == nil || !c.readerState.CompareAndSwap(sideFree, sideBusy) {
		return
	}
	_ = c.layer.refill()
	c.unlockReader()
}

// finishAfterPeerClose closes a connection whose peer closed, once its
// input is handled and OnDisconnect has returned, so the close callbacks
// always come after OnDisconnect. A connection without OnRequest keeps its
// unread input readable after the close. It reports whether the handler is
// done for good; if OnDisconnect still runs, the handler steps aside and
// OnDisconnect kicks it when it returns.
//
// serveInput has just returned, so any input left is a request the handler
// will not complete: no more bytes can come.
func (c *connection) finishAfterPeerClose() bool {
	if c.disconnect.Load() != disconnectDone {
		return false
	}
	c.close()
	return true
}

// States of connection.disconnect.
const (
	disconnectPending int32 = iota // the peer has not closed
	disconnectRunning              // OnDisconnect runs on the runner
	disconnectDone                 // OnDisconnect returned, or there was none
)

// startDisconnect runs OnDisconnect on the runner as soon as the peer
// closes, without waiting for a running OnRequest: frameworks use it to
// cancel the work of a client that went away (Hertz's client-disconnection
// sensing). But never before OnConnect has returned, as the reference
// does: OnDisconnect gets the context OnConnect made (a proxy finds its
// upstream there). So whichever comes second, the peer's close (on the
// poller) or OnConnect's return (on the handler), starts it; the state CAS
// makes it run once.
func (c *connection) startDisconnect() {
	onDisconnect := c.onDisconnect.Load()
	if onDisconnect == nil || c.closingStarted() {
		c.disconnect.CompareAndSwap(disconnectPending, disconnectDone)
		return
	}
	if !c.disconnect.CompareAndSwap(disconnectPending, disconnectRunning) {
		return
	}
	ctx := *c.ctx.Load()
	runTask(ctx, func() {
		if c.hold() {
			c.runCallback("OnDisconnect", func() { (*onDisconnect)(ctx, c.owner) })
			c.release(false)
		}
		c.disconnect.Store(disconnectDone)
		c.kickHandler()
	})
}
