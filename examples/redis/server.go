package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"

	"github.com/ccb70390/netpoll"
)

// store is the in-memory keyspace. Values are never changed in place: SET and
// INCR store a new slice, so a reply may reference a value after the lock is
// dropped, until its Flush.
type store struct {
	mu   sync.Mutex // guards data
	data map[string][]byte
}

// server answers RESP2 commands on netpoll connections.
type server struct {
	store store
}

func newServer() *server {
	return &server{store: store{data: make(map[string][]byte)}}
}

type connStateKey struct{}

// onConnect gives each connection its reusable command, so parsing allocates
// nothing in steady state. Called before any onRequest of the connection.
func (s *server) onConnect(ctx context.Context, _ netpoll.Connection) context.Context {
	return context.WithValue(ctx, connStateKey{}, &command{})
}

// onRequest answers every whole command buffered on conn, in order, then
// flushes the replies with one write. An incomplete command is left in the
// input untouched: onRequest runs again when more of it arrives.
func (s *server) onRequest(ctx context.Context, conn netpoll.Connection) error {
	cmd := ctx.Value(connStateKey{}).(*command)
	r, w := conn.Reader(), conn.Writer()
	for {
		err := parseCommand(r, cmd)
		if errors.Is(err, errIncomplete) {
			break
		}
		var pe *protocolError
		if errors.As(err, &pe) {
			writeError(w, "ERR "+pe.Error())
			err = w.Flush()
			_ = conn.Close()
			return err
		}
		if err != nil {
			_ = conn.Close()
			return err
		}
		if err := s.consume(r, w, cmd); err != nil {
			_ = conn.Close()
			return err
		}
	}
	if w.MallocLen() == 0 {
		return nil
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("redis: flush: %w", err)
	}
	return nil
}

// consume takes the command's frame out of r, in place, executes it and
// releases the frame.
func (s *server) consume(r netpoll.Reader, w netpoll.Writer, cmd *command) error {
	var frame []byte
	var err error
	if cmd.inline {
		// parseCommand has seen the line end, so Until does not block.
		frame, err = r.Until('\n')
	} else {
		frame, err = r.Next(cmd.size)
	}
	if err != nil {
		return fmt.Errorf("redis: read frame: %w", err)
	}
	if len(cmd.args) > 0 {
		s.execute(w, frame, cmd.args)
	}
	// One Release per command: its frame goes back to the pool now.
	return r.Release()
}

// arg returns argument i of the command in frame.
func arg(frame []byte, args []span, i int) []byte {
	return frame[args[i].off : args[i].off+args[i].n]
}

// execute runs one command and writes its reply. Argument slices alias the
// input buffer: whatever is stored is copied first.
func (s *server) execute(w netpoll.Writer, frame []byte, args []span) {
	name := arg(frame, args, 0)
	argc := len(args)
	switch {
	case equalFold(name, "PING") && argc <= 2:
		if argc == 1 {
			writeSimple(w, "PONG")
		} else {
			writeBulkCopy(w, arg(frame, args, 1))
		}
	case equalFold(name, "ECHO") && argc == 2:
		writeBulkCopy(w, arg(frame, args, 1))
	case equalFold(name, "GET") && argc == 2:
		s.store.mu.Lock()
		v, ok := s.store.data[string(arg(frame, args, 1))]
		s.store.mu.Unlock()
		if ok {
			writeBulk(w, v)
		} else {
			writeNil(w)
		}
	case equalFold(name, "SET") && argc >= 3:
		if argc > 3 {
			writeError(w, "ERR syntax error")
			return
		}
		v := bytes.Clone(arg(frame, args, 2))
		s.store.mu.Lock()
		s.store.data[string(arg(frame, args, 1))] = v
		s.store.mu.Unlock()
		writeSimple(w, "OK")
	case equalFold(name, "DEL") && argc >= 2:
		n := 0
		s.store.mu.Lock()
		for i := 1; i < argc; i++ {
			k := arg(frame, args, i)
			if _, ok := s.store.data[string(k)]; ok {
				delete(s.store.data, string(k))
				n++
			}
		}
		s.store.mu.Unlock()
		writeInt(w, int64(n))
	case equalFold(name, "EXISTS") && argc >= 2:
		n := 0
		s.store.mu.Lock()
		for i := 1; i < argc; i++ {
			if _, ok := s.store.data[string(arg(frame, args, i))]; ok {
				n++
			}
		}
		s.store.mu.Unlock()
		writeInt(w, int64(n))
	case equalFold(name, "INCR") && argc == 2:
		s.incr(w, arg(frame, args, 1))
	case equalFold(name, "MGET") && argc >= 2:
		writeArrayHeader(w, argc-1)
		for i := 1; i < argc; i++ {
			s.store.mu.Lock()
			v, ok := s.store.data[string(arg(frame, args, i))]
			s.store.mu.Unlock()
			if ok {
				writeBulk(w, v)
			} else {
				writeNil(w)
			}
		}
	case equalFold(name, "MSET") && argc >= 3 && argc%2 == 1:
		s.store.mu.Lock()
		for i := 1; i < argc; i += 2 {
			s.store.data[string(arg(frame, args, i))] = bytes.Clone(arg(frame, args, i+1))
		}
		s.store.mu.Unlock()
		writeSimple(w, "OK")
	case isKnown(name):
		writeError(w, "ERR wrong number of arguments for '"+string(bytes.ToLower(name))+"' command")
	default:
		writeUnknown(w, frame, args)
	}
}

// incr adds one to the integer stored at key, as a decimal string.
func (s *server) incr(w netpoll.Writer, key []byte) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var n int64
	if v, ok := s.store.data[string(key)]; ok {
		var err error
		n, err = strconv.ParseInt(string(v), 10, 64)
		// Redis refuses what it would not print back the same way.
		if err != nil || len(v) == 0 || strconv.FormatInt(n, 10) != string(v) {
			writeError(w, "ERR value is not an integer or out of range")
			return
		}
	}
	if n == math.MaxInt64 {
		writeError(w, "ERR increment or decrement would overflow")
		return
	}
	n++
	s.store.data[string(key)] = strconv.AppendInt(nil, n, 10)
	writeInt(w, n)
}

// commands are the names this server knows, for the arity error.
var commands = []string{"PING", "ECHO", "GET", "SET", "DEL", "EXISTS", "INCR", "MGET", "MSET"}

func isKnown(name []byte) bool {
	for _, c := range commands {
		if equalFold(name, c) {
			return true
		}
	}
	return false
}

// writeUnknown answers an unknown command in the words of Redis 7, which
// quotes the first arguments so that a user sees what was sent.
func writeUnknown(w netpoll.Writer, frame []byte, args []span) {
	var b []byte
	b = append(b, "ERR unknown command '"...)
	b = appendSafe(b, arg(frame, args, 0), 128)
	b = append(b, "', with args beginning with: "...)
	for i := 1; i < len(args) && len(b) < 128; i++ {
		b = append(b, '\'')
		b = appendSafe(b, arg(frame, args, i), 128-len(b))
		b = append(b, "' "...)
	}
	writeError(w, string(b))
}

// appendSafe appends up to n bytes of p, with line ends replaced by spaces:
// an error reply is one line.
func appendSafe(b, p []byte, n int) []byte {
	for _, c := range p[:min(len(p), max(n, 0))] {
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// equalFold compares b with the upper-case ASCII word s, ignoring case,
// without allocating.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
