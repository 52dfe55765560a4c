// Package extest holds the helpers that the tests of the example servers share:
// starting a server in-process on a free loopback port, and running the real
// clients (curl, wrk, redis-cli, ...) that examples/install-clients.sh installs.
package extest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunFunc is the shape of each example's run function: serve on addr until
// ctx ends, sending the address actually listened on to ready.
type RunFunc func(ctx context.Context, addr string, ready chan<- string) error

// startTimeout bounds how long a server may take to start listening.
const startTimeout = 10 * time.Second

// StartServer runs run on 127.0.0.1:0 in a goroutine and returns the address
// it listens on. Cleanup stops it by cancelling its context and fails the test
// if run returns an error or takes longer than its shutdown allows.
func StartServer(tb testing.TB, run RunFunc) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		tb.Fatalf("server stopped before listening: %v", err)
	case <-time.After(startTimeout):
		cancel()
		tb.Fatalf("server not listening after %v", startTimeout)
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("server stopped with %v; want nil", err)
			}
		case <-time.After(2 * startTimeout):
			tb.Errorf("server still running %v after cancel", 2*startTimeout)
		}
	})
	return addr
}

// Client returns the path of the named client program, or skips the test
// if it is not installed.
func Client(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Skipf("%s not installed (examples/install-clients.sh installs it): %v", name, err)
	}
	return path
}

// Command runs the program at path with args and stdin, for at most timeout,
// and returns what it printed on standard output. A non-zero exit fails the
// test, with standard error in the message.
func Command(tb testing.TB, timeout time.Duration, stdin []byte, path string, args ...string) string {
	tb.Helper()
	out, err := TryCommand(tb, timeout, stdin, path, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// TryCommand is Command that returns the failure instead of failing the test.
func TryCommand(tb testing.TB, timeout time.Duration, stdin []byte, path string, args ...string) (string, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return stdout.String(), &CommandError{Cmd: cmd.String(), Err: ctx.Err(), Stderr: stderr.String()}
	}
	if err != nil {
		return stdout.String(), &CommandError{Cmd: cmd.String(), Err: err, Stderr: stderr.String()}
	}
	return stdout.String(), nil
}

// CommandError is a client program that failed or ran past its timeout.
type CommandError struct {
	Cmd    string
	Err    error
	Stderr string
}

// Error returns the command line, how it failed, and its standard error.
func (e *CommandError) Error() string {
	return e.Cmd + ": " + e.Err.Error() + "\n" + strings.TrimSpace(e.Stderr)
}

// Unwrap returns the failure, an *exec.ExitError or a context error.
func (e *CommandError) Unwrap() error { return e.Err }
