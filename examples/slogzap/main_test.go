package main

import "testing"

// TestDemo runs the example as -demo does: a real TCP client resets its
// connection, and run returns only once netpoll's line about it reached the
// zap core, through zapslog's slog.Handler.
func TestDemo(t *testing.T) {
	if err := run("127.0.0.1:0", true); err != nil {
		t.Fatalf("run in demo mode: %v", err)
	}
}
