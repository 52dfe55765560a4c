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
		runTask(*c.ctx.Load(), c.handleFunc)
	}
}

// handle is the handler goroutine's body.
func (c *connection) handle() {
	for {
		seen := c.pending.Load()
		if c.connectPending.CompareAndSwap(true, false) {
			c.runOnConnect()
		}
		c.serveInput()
		if c.peerClosed.Load() && c.finishAfterPeerClose() {
			return
		}
		if c.closing.Load() {
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
// bytes does not make the library spin.
func (c *connection) serveInput() {
	for !c.closing.Load() {
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
		if after >= before && c.pending.Load() == events {
			return
		}
	}
}

// finishAfterPeerClose ends a connection whose peer closed, once its input is
// handled: OnDisconnect, then close. A connection without OnRequest keeps
// its unread input readable after the close. It reports whether the handler
// is done for good.
//
// serveInput has just returned, so any input left is a request the handler
// will not complete: no more bytes can come.
func (c *connection) finishAfterPeerClose() bool {
	if onDisconnect := c.onDisconnect.Load(); onDisconnect != nil && !c.closing.Load() {
		ctx := *c.ctx.Load()
		c.runCallback("OnDisconnect", func() { (*onDisconnect)(ctx, c.owner) })
	}
	c.close()
	return true
}
