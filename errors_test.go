package netpoll

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestExceptionMatching(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		matches     []error
		notMatches  []error
		wantTimeout bool
	}{
		// ErrEOF does not match io.EOF, as in the reference (issue #16).
		{"eof", Exception(ErrEOF, "read"), []error{ErrEOF, ErrConnClosed}, []error{io.EOF, ErrReadTimeout, net.ErrClosed}, false},
		{"bare eof", ErrEOF, []error{ErrEOF}, []error{io.EOF}, false},
		{"closed", Exception(ErrConnClosed, "flush"), []error{ErrConnClosed, net.ErrClosed}, []error{ErrEOF, io.EOF}, false},
		{"read timeout", Exception(ErrReadTimeout, "next"), []error{ErrReadTimeout, os.ErrDeadlineExceeded}, []error{ErrWriteTimeout}, true},
		{"write timeout", Exception(ErrWriteTimeout, ""), []error{ErrWriteTimeout, os.ErrDeadlineExceeded}, []error{ErrReadTimeout}, true},
		{"dial timeout", Exception(ErrDialTimeout, "dial"), []error{ErrDialTimeout, os.ErrDeadlineExceeded}, nil, true},
		{"wrapped twice", Exception(Exception(ErrReadTimeout, "a"), "b"), []error{ErrReadTimeout}, nil, true},
		{"foreign error", Exception(syscall.ECONNRESET, "read"), []error{syscall.ECONNRESET}, []error{ErrConnClosed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range tt.matches {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = false; want true", tt.err, target)
				}
			}
			for _, target := range tt.notMatches {
				if errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = true; want false", tt.err, target)
				}
			}
			var ne net.Error
			isNetErr := errors.As(tt.err, &ne)
			if tt.wantTimeout && (!isNetErr || !ne.Timeout()) {
				t.Errorf("%v: Timeout() false; want a net.Error timeout", tt.err)
			}
			if !tt.wantTimeout && isNetErr && ne.Timeout() {
				t.Errorf("%v: Timeout() true; want false", tt.err)
			}
		})
	}
	if Exception(nil, "x") != nil {
		t.Errorf("Exception(nil) != nil")
	}
	// The reference's texts: errno message, one space, suffix.
	for _, tt := range []struct {
		err  error
		want string
	}{
		{Exception(ErrEOF, "read"), "EOF read"},
		{Exception(ErrConnClosed, ""), "connection has been closed"},
		{Exception(ErrDialTimeout, "dial"), "dial wait timeout dial"},
		{Exception(syscall.ECONNRESET, "read"), "connection reset by peer read"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
}
