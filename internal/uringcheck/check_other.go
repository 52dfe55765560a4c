//go:build !linux

package uringcheck

import "fmt"

// Run fails: io_uring is Linux's.
func Run(network string, transfers int) (Result, error) {
	return Result{}, fmt.Errorf("%w: io_uring is Linux only", ErrRefused)
}
