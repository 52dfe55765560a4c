package main

import "go.uber.org/goleak"

// leakOptions ignores the goroutines the library keeps for the life of the
// process: its pollers, which start with the first connection, and its idle
// handler goroutines. The library exports no way to stop them yet (its own
// tests call the unexported pollers.Close and defaultPool.drain).
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/ccb70390/netpoll/internal/poller.(*Poller).loop"),
	goleak.IgnoreTopFunction("github.com/ccb70390/netpoll.(*workerPool).serve"),
}
