//go:build !linux

package netpoll

// prepareEngineChild has nothing to do without io_uring: the engine tests
// are Linux's (engine_linux_test.go).
func prepareEngineChild() {}
