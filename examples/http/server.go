package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ccb70390/netpoll"
)

// rootBody is what GET / answers.
const rootBody = "Hello from netpoll!\n"

// server answers HTTP/1.1 requests on netpoll connections.
type server struct {
	limits limits
	date   dateCache
}

// connState is what a connection remembers between two calls of onRequest.
type connState struct {
	req request
	// continued is set once "100 Continue" was sent for the request being
	// received, so that more input for the same body does not send it again.
	continued bool
}

type connStateKey struct{}

// onConnect gives each connection its state. Called before any onRequest of
// the connection.
func (s *server) onConnect(ctx context.Context, _ netpoll.Connection) context.Context {
	return context.WithValue(ctx, connStateKey{}, &connState{})
}

// onRequest answers every whole request buffered on conn, in order, then
// flushes the answers with one write. An incomplete request is left in the
// input untouched: onRequest runs again when more of it arrives.
func (s *server) onRequest(ctx context.Context, conn netpoll.Connection) error {
	st := ctx.Value(connStateKey{}).(*connState)
	r, w := conn.Reader(), conn.Writer()
	for {
		err := parseRequest(r, &st.req, s.limits)
		if errors.Is(err, errIncomplete) {
			if st.req.expectContinue && !st.continued {
				// RFC 9110 §10.1.1: the client waits for this before it sends the body.
				st.continued = true
				if _, err := w.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
					return fmt.Errorf("http: write: %w", err)
				}
			}
			break
		}
		var se *statusError
		if errors.As(err, &se) {
			return s.refuse(conn, se)
		}
		if err != nil {
			_ = conn.Close()
			return err
		}
		st.continued = false
		if err := s.answer(r, w, &st.req); err != nil {
			_ = conn.Close()
			return err
		}
		if !st.req.keepAlive {
			err := w.Flush()
			_ = conn.Close()
			return err
		}
	}
	if w.MallocLen() == 0 {
		return nil
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("http: flush: %w", err)
	}
	return nil
}

// answer writes the response to req and consumes req from r. The request
// body, echoed by POST /echo, goes from input to output without a copy when
// it is large: each chunk of it becomes a Slice of the input buffer that is
// appended to the output buffer.
func (s *server) answer(r netpoll.Reader, w netpoll.Writer, req *request) error {
	var err error
	switch req.route {
	case routeRoot:
		err = s.writeHead(w, http.StatusOK, len(rootBody), req, "")
		if err == nil && !req.head {
			_, err = w.WriteString(rootBody)
		}
		if err == nil {
			err = r.Skip(req.totalLen)
		}
	case routeEcho:
		err = s.writeHead(w, http.StatusOK, req.bodyLen, req, "")
		if err == nil {
			err = echoBody(r, w, req)
		}
	case routeMethodNotAllowed:
		// RFC 9110 §15.5.6: a 405 lists the methods the target allows.
		err = s.writeSimple(w, http.StatusMethodNotAllowed, req, "Allow: "+req.allow+"\r\n")
		if err == nil {
			err = r.Skip(req.totalLen)
		}
	default:
		err = s.writeSimple(w, http.StatusNotFound, req, "")
		if err == nil {
			err = r.Skip(req.totalLen)
		}
	}
	if err != nil {
		return fmt.Errorf("http: answer: %w", err)
	}
	// One Release per request: the bytes of this request go back to the pool
	// now, not after the whole batch.
	return r.Release()
}

// echoBody writes the body of req to w and consumes the request from r.
// Chunks below BinaryInplaceThreshold are copied, as WriteBinary would do
// anyway; larger ones are spliced in as Slices, which live on after Release.
func echoBody(r netpoll.Reader, w netpoll.Writer, req *request) error {
	pos := 0
	for _, c := range req.chunks {
		if err := r.Skip(c.off - pos); err != nil {
			return err
		}
		pos = c.off + c.n
		if c.n < netpoll.BinaryInplaceThreshold {
			p, err := r.Next(c.n)
			if err != nil {
				return err
			}
			if _, err := w.WriteBinary(p); err != nil {
				return err
			}
			continue
		}
		body, err := r.Slice(c.n)
		if err != nil {
			return err
		}
		bw, ok := body.(netpoll.Writer)
		if !ok {
			return fmt.Errorf("http: Slice returned %T, which is not a Writer", body)
		}
		if err := w.Append(bw); err != nil {
			return err
		}
	}
	return r.Skip(req.totalLen - pos)
}

// refuse answers a request the server will not serve and closes conn.
func (s *server) refuse(conn netpoll.Connection, se *statusError) error {
	w := conn.Writer()
	req := &request{minor: 1}
	body := http.StatusText(se.code) + ": " + se.reason + "\n"
	err := s.writeHead(w, se.code, len(body), req, "")
	if err == nil {
		_, err = w.WriteString(body)
	}
	if err == nil {
		err = w.Flush()
	}
	_ = conn.Close()
	return err
}

// writeSimple answers with status and its text as the body.
func (s *server) writeSimple(w netpoll.Writer, status int, req *request, extra string) error {
	body := http.StatusText(status) + "\n"
	if err := s.writeHead(w, status, len(body), req, extra); err != nil {
		return err
	}
	if req.head {
		return nil
	}
	_, err := w.WriteString(body)
	return err
}

// writeHead writes the status line and header section straight into the
// output buffer: it computes their exact length, Mallocs that much, and fills
// it in place. extra is a whole header line with its CRLF, or empty.
func (s *server) writeHead(w netpoll.Writer, status, contentLength int, req *request, extra string) error {
	statusLine := "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n"
	if status == http.StatusOK {
		statusLine = "HTTP/1.1 200 OK\r\n"
	}
	date := s.date.header(time.Now())
	conn := ""
	switch {
	case !req.keepAlive:
		conn = "Connection: close\r\n"
	case req.minor == 0:
		conn = "Connection: keep-alive\r\n"
	}
	const ctype = "Content-Type: text/plain; charset=utf-8\r\n"
	const clen = "Content-Length: "
	n := len(statusLine) + len(date) + len(ctype) + len(clen) + decimalLen(contentLength) + 2 +
		len(conn) + len(extra) + 2
	buf, err := w.Malloc(n)
	if err != nil {
		return err
	}
	b := append(buf[:0], statusLine...)
	b = append(b, date...)
	b = append(b, ctype...)
	b = append(b, clen...)
	b = strconv.AppendInt(b, int64(contentLength), 10)
	b = append(b, "\r\n"...)
	b = append(b, conn...)
	b = append(b, extra...)
	b = append(b, "\r\n"...)
	if len(b) != n {
		panic(fmt.Sprintf("http: head is %d bytes, malloc'd %d", len(b), n))
	}
	return nil
}

// decimalLen returns the number of digits of n >= 0.
func decimalLen(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// dateCache formats the Date header once a second instead of once a request.
type dateCache struct {
	// Atomic; replaced by whichever handler first sees a new second.
	cached atomic.Pointer[datedHeader]
}

type datedHeader struct {
	unix int64
	line []byte // "Date: ...\r\n"
}

// header returns the Date header line for now. The slice is shared: read only.
func (d *dateCache) header(now time.Time) []byte {
	sec := now.Unix()
	if c := d.cached.Load(); c != nil && c.unix == sec {
		return c.line
	}
	line := now.UTC().AppendFormat([]byte("Date: "), http.TimeFormat)
	c := &datedHeader{unix: sec, line: append(line, "\r\n"...)}
	d.cached.Store(c)
	return c.line
}
