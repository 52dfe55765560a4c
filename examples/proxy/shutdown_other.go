//go:build !unix

package main

import "github.com/ccb70390/netpoll"

// shutdownWrite closes c where sockets cannot be half-closed through an int
// descriptor; the library is not supported there anyway.
func shutdownWrite(c netpoll.Connection) error { return c.Close() }
