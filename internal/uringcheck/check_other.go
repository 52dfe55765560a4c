//go:build !linux

package uringcheck

import "errors"

// Run fails: io_uring is Linux's.
func Run(network string, transfers int) (Result, error) {
	return Result{}, errors.New("io_uring is Linux only")
}
