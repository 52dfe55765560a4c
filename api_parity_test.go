package netpoll

import (
	"context"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// This file names every identifier of the compatibility surface
// (shared/API.md) with its exact type, so a signature that drifts from the
// reference fails the build. The test also checks what the types promise at
// run time.

var (
	_ OnPrepare     = func(connection Connection) context.Context { return nil }
	_ OnConnect     = func(ctx context.Context, connection Connection) context.Context { return nil }
	_ OnRequest     = func(ctx context.Context, connection Connection) error { return nil }
	_ OnDisconnect  = func(ctx context.Context, connection Connection) {}
	_ CloseCallback = func(connection Connection) error { return nil }

	_ func(OnRequest, ...Option) (EventLoop, error) = NewEventLoop
	_ func(OnPrepare) Option                        = WithOnPrepare
	_ func(OnConnect) Option                        = WithOnConnect
	_ func(OnDisconnect) Option                     = WithOnDisconnect
	_ func(time.Duration) Option                    = WithReadTimeout
	_ func(time.Duration) Option                    = WithWriteTimeout
	_ func(time.Duration) Option                    = WithIdleTimeout
	_ func(net.Listener) (Listener, error)          = ConvertListener

	_ func(string, string, time.Duration) (Connection, error)                   = DialConnection
	_ func(int) (Connection, error)                                             = NewFDConnection
	_ func() Dialer                                                             = NewDialer
	_ func(string, string) (*TCPAddr, error)                                    = ResolveTCPAddr
	_ func(context.Context, string, *TCPAddr, *TCPAddr) (*TCPConnection, error) = DialTCP
	_ func(string, string) (*UnixAddr, error)                                   = ResolveUnixAddr
	_ func(string, *UnixAddr, *UnixAddr) (*UnixConnection, error)               = DialUnix

	_ func(io.Reader) Reader         = NewReader
	_ func(io.Writer) Writer         = NewWriter
	_ func(io.ReadWriter) ReadWriter = NewReadWriter
	_ func(Reader) io.Reader         = NewIOReader
	_ func(Writer) io.Writer         = NewIOWriter
	_ func(ReadWriter) io.ReadWriter = NewIOReadWriter
	_ func(...int) *LinkBuffer       = NewLinkBuffer
	_ *UnsafeLinkBuffer              = (*LinkBuffer)(nil)
	_ int                            = LinkBufferCap
	_ int                            = BinaryInplaceThreshold

	_ func(Config) error                           = Configure
	_ func(int) error                              = SetNumLoops
	_ func(LoadBalance) error                      = SetLoadBalance
	_ func(func(ctx context.Context, f func()))    = SetRunner
	_ func(io.Writer)                              = SetLoggerOutput
	_ func() error                                 = DisableGopool
	_ func()                                       = Initialize
	_ func(int, int) error                         = SetKeepAlive
	_ func(error, string) error                    = Exception
	_ func() (int, int)                            = GetSysFdPairs
	_ LoadBalance                                  = RoundRobin
	_ LoadBalance                                  = Random
	_ Feature                                      = Feature{AlwaysNoCopyRead: true}
	_                                              = Config{PollerNum: 1, BufferSize: 1, Runner: nil, LoggerOutput: io.Discard, LoadBalance: RoundRobin, Feature: Feature{}}
	_ syscall.Errno                                = ErrnoMask
	_ PollEvent                                    = PollReadable
	_ PollEvent                                    = PollWritable
	_ PollEvent                                    = PollDetach
	_ PollEvent                                    = PollR2RW
	_ PollEvent                                    = PollRW2R
	_ func(op *FDOperator, event PollEvent) error  = (*FDOperator).Control
	_ func(op *FDOperator)                         = (*FDOperator).Free
	_ func(Poll) error                             = FDOperator{}.OnRead
	_ func(Poll) error                             = FDOperator{}.OnWrite
	_ func(Poll) error                             = FDOperator{}.OnHup
	_ func([][]byte) [][]byte                      = FDOperator{}.Inputs
	_ func(int) error                              = FDOperator{}.InputAck
	_ func([][]byte) ([][]byte, bool)              = FDOperator{}.Outputs
	_ func(int) error                              = FDOperator{}.OutputAck
	_ int                                          = FDOperator{}.FD
	_ interface{ Serve(net.Listener) error }       = EventLoop(nil)
	_ interface{ Shutdown(context.Context) error } = EventLoop(nil)
	_ interface{ Fd() int }                        = Listener(nil)
	_ interface{ Fd() int }                        = Conn(nil)
	_ net.Conn                                     = Connection(nil)
	_ interface{ Wait() error }                    = Poll(nil)
	_ interface{ Trigger() error }                 = Poll(nil)
	_ interface{ Close() error }                   = Poll(nil)
	_ interface {
		Control(*FDOperator, PollEvent) error
	} = Poll(nil)
	_ interface{ Alloc() *FDOperator } = Poll(nil)
	_ interface{ Free(*FDOperator) }   = Poll(nil)
)

// The Connection, Conn, Reader, Writer and ReadWriter method sets, with exact
// signatures.
type (
	wantConnection interface {
		net.Conn
		Reader() Reader
		Writer() Writer
		IsActive() bool
		SetReadTimeout(timeout time.Duration) error
		SetWriteTimeout(timeout time.Duration) error
		SetIdleTimeout(timeout time.Duration) error
		SetOnRequest(on OnRequest) error
		AddCloseCallback(callback CloseCallback) error
	}
	wantReader interface {
		Next(n int) ([]byte, error)
		Peek(n int) ([]byte, error)
		Skip(n int) error
		Until(delim byte) ([]byte, error)
		ReadString(n int) (string, error)
		ReadBinary(n int) ([]byte, error)
		ReadByte() (byte, error)
		Slice(n int) (Reader, error)
		Release() error
		Len() int
	}
	wantWriter interface {
		Malloc(n int) ([]byte, error)
		WriteString(s string) (int, error)
		WriteBinary(b []byte) (int, error)
		WriteByte(b byte) error
		WriteDirect(p []byte, remainCap int) error
		MallocAck(n int) error
		Append(w Writer) error
		Flush() error
		MallocLen() int
	}
	wantDialedExtras interface {
		Detach() error
		SetKeepAlive(second int) error
		SetOnConnect(OnConnect) error
		SetOnDisconnect(OnDisconnect) error
		Fd() int
	}
	wantLinkBufferExtras interface {
		Len() int
		IsEmpty() bool
		Bytes() []byte
		GetBytes(p [][]byte) [][]byte
		WriteBuffer(buf *LinkBuffer) error
		Close() error
	}
)

var (
	_ wantConnection       = Connection(nil)
	_ Connection           = wantConnection(nil)
	_ wantReader           = Reader(nil)
	_ Reader               = wantReader(nil)
	_ wantWriter           = Writer(nil)
	_ Writer               = wantWriter(nil)
	_ ReadWriter           = (*LinkBuffer)(nil)
	_ wantLinkBufferExtras = (*LinkBuffer)(nil)
	_ Connection           = (*TCPConnection)(nil)
	_ Conn                 = (*TCPConnection)(nil)
	_ wantDialedExtras     = (*TCPConnection)(nil)
	_ ReadWriter           = (*TCPConnection)(nil)
	_ Connection           = (*UnixConnection)(nil)
	_ Conn                 = (*UnixConnection)(nil)
	_ wantDialedExtras     = (*UnixConnection)(nil)
	_ ReadWriter           = (*UnixConnection)(nil)
	_ Dialer               = NewDialer()
	_ Listener             = Listener(nil)
	_ net.Addr             = &TCPAddr{}
	_ net.Addr             = &UnixAddr{}
)

func TestAPIErrorValues(t *testing.T) {
	tests := []struct {
		name string
		err  syscall.Errno
		want syscall.Errno
	}{
		{"ErrConnClosed", ErrConnClosed, 0x101},
		{"ErrReadTimeout", ErrReadTimeout, 0x102},
		{"ErrDialTimeout", ErrDialTimeout, 0x103},
		{"ErrDialNoDeadline", ErrDialNoDeadline, 0x104},
		{"ErrUnsupported", ErrUnsupported, 0x105},
		{"ErrEOF", ErrEOF, 0x106},
		{"ErrWriteTimeout", ErrWriteTimeout, 0x107},
		{"ErrConcurrentAccess", ErrConcurrentAccess, 0x108},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err != tt.want {
				t.Fatalf("%s = %#x; want %#x", tt.name, uint(tt.err), uint(tt.want))
			}
		})
	}
}

// TestServerConnectionHasNocopyMethods: frameworks assert the value handed
// to OnRequest to an interface of Reader and Writer methods.
func TestServerConnectionHasNocopyMethods(t *testing.T) {
	ln := newLocalListener(t, "tcp")
	ok := make(chan bool, 1)
	startServer(t, ln, func(ctx context.Context, c Connection) error {
		_, isRW := c.(interface {
			ReadWriter
			Connection
		})
		ok <- isRW
		return c.Reader().Skip(c.Reader().Len())
	})
	c := dialStd(t, ln)
	_, _ = c.Write([]byte("x"))
	if !recvTimeout(t, ok, 5*time.Second, "handler") {
		t.Fatalf("server connection does not carry the Reader and Writer methods")
	}
}
