package netpoll

// Reader is the zero-copy input side of a connection or buffer.
//
// Slices returned by Next, Peek and Until alias the buffer's memory: they are
// valid until the next Release, and must not be modified. ReadBinary and
// ReadString return copies the caller owns. Only one goroutine may read at a
// time; on a connection a second concurrent reader gets ErrConcurrentAccess.
//
// On a connection the methods block until enough input is buffered, the read
// timeout or deadline passes (ErrReadTimeout), or no more input can come
// (ErrEOF after the peer closed, ErrConnClosed after Close).
type Reader interface {
	// Next returns the next n bytes and advances past them. The slice aliases
	// the buffer until the next Release.
	Next(n int) (p []byte, err error)

	// Peek returns the next n bytes without advancing. The slice aliases the
	// buffer until the next Release.
	Peek(n int) (buf []byte, err error)

	// Skip advances past the next n bytes.
	Skip(n int) (err error)

	// Until returns the bytes up to and including the first delim and advances
	// past them. The slice aliases the buffer until the next Release.
	Until(delim byte) (line []byte, err error)

	// ReadString returns the next n bytes as a string the caller owns.
	ReadString(n int) (s string, err error)

	// ReadBinary returns the next n bytes as a slice the caller owns.
	ReadBinary(n int) (p []byte, err error)

	// ReadByte returns the next byte.
	ReadByte() (b byte, err error)

	// Slice returns the next n bytes as an independent Reader that shares the
	// memory without copying, and advances past them. The returned Reader
	// stays valid after this Reader's Release; release it on its own. As in
	// the reference, Slice also releases this Reader (see Release): slices
	// from Next, Peek and Until taken before it become invalid.
	Slice(n int) (r Reader, err error)

	// Release frees the memory of everything read so far. Every slice that
	// Next, Peek or Until returned before it becomes invalid.
	Release() (err error)

	// Len returns the number of bytes buffered and not yet read.
	Len() (length int)
}

// Writer is the zero-copy output side of a connection or buffer.
//
// Writing is two steps: reserve or append bytes (Malloc, WriteString,
// WriteBinary, WriteByte, WriteDirect, Append), then submit them with Flush.
// A slice from Malloc is valid until that Flush and must be filled before it.
// Buffers passed to WriteBinary, WriteString and WriteDirect may be referenced
// rather than copied until the Flush, so they must not change before it.
// Only one goroutine may write at a time; on a connection a second concurrent
// writer gets ErrConcurrentAccess.
type Writer interface {
	// Malloc reserves n writable bytes in the output and returns them.
	Malloc(n int) (buf []byte, err error)

	// WriteString appends s.
	WriteString(s string) (n int, err error)

	// WriteBinary appends b. From BinaryInplaceThreshold bytes on, b is
	// referenced instead of copied, so it must not change until Flush.
	WriteBinary(b []byte) (n int, err error)

	// WriteByte appends one byte.
	WriteByte(b byte) (err error)

	// WriteDirect inserts p in front of the last remainCap bytes of the most
	// recent Malloc, without copying p. It lets a caller Malloc one region,
	// then splice a large slice into its middle.
	WriteDirect(p []byte, remainCap int) error

	// MallocAck keeps the first n bytes of what was reserved since the last
	// Flush and discards the rest.
	MallocAck(n int) (err error)

	// Append moves the content of w to the end of this Writer without
	// copying. w must not be used afterwards.
	Append(w Writer) (err error)

	// Flush submits everything written. On a connection it sends it and
	// blocks until it is sent, the write timeout or deadline passes
	// (ErrWriteTimeout), or the connection closes. When Flush returns, the
	// memory passed to WriteBinary, WriteString and WriteDirect is the
	// caller's again, even if Flush failed: a failed Flush never leaves
	// output that points at it. On the write timeout the connection is
	// closed (its output is half sent); after any other failure (a
	// deadline) the unsent output keeps its own copy, and a later Flush
	// sends the rest.
	Flush() (err error)

	// MallocLen returns the number of bytes written and not yet flushed.
	MallocLen() (length int)
}

// ReadWriter is a Reader and a Writer together.
type ReadWriter interface {
	Reader
	Writer
}
