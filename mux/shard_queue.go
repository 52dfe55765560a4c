// Package mux merges many writers' output onto one netpoll connection, as a
// multiplexed RPC client or server needs: goroutines Add their encoded
// messages, and one flusher appends them all to the connection's Writer and
// sends them with a single Flush.
package mux

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ccb70390/netpoll"
)

// ShardSize is the number of shards a queue made with a size of zero or less
// uses. It defaults to GOMAXPROCS, so concurrent Adds rarely meet on a lock.
var ShardSize int

func init() {
	ShardSize = runtime.GOMAXPROCS(0)
}

// WriterGetter returns a message to send. isNil reports that there is none
// (the message was cancelled, say), and buf is then ignored.
type WriterGetter func() (buf netpoll.Writer, isNil bool)

// ShardQueue merges the messages of many goroutines onto one connection.
//
// Add never blocks on the network: it files the getters in a shard and, if
// no flusher runs, starts one. The flusher drains every shard, appends each
// message to the connection's Writer without copying, and flushes once for
// the batch; it keeps going while Adds keep coming, so a burst costs one
// goroutine start. A failed flush closes the connection. Only the flusher
// writes to the connection, so nobody else may use its Writer meanwhile.
type ShardQueue struct {
	conn   netpoll.Connection
	shards []shard
	next   atomic.Uint32 // round robin over shards

	// pending counts Adds since the flusher last looked; the Add that moves
	// it from zero starts the flusher.
	pending atomic.Int32
	closed  atomic.Bool

	// flushers counts the flushers running, for Close. It is a count, not a
	// flag: a flusher that has decided to stop is still counted when an Add
	// may already have started the next one, and clearing a flag then would
	// let Close return while the new one sends (#15). Only one of them ever
	// touches the connection: the old one is done with it.
	mu       sync.Mutex
	idle     *sync.Cond // signalled, under mu, when the last flusher finishes
	flushers int        // guarded by mu
}

type shard struct {
	mu      sync.Mutex
	getters []WriterGetter // guarded by mu
	_       [40]byte       // keep neighbouring shards' locks off one cache line
}

// NewShardQueue returns a queue of size shards writing to conn; size zero or
// less means ShardSize.
func NewShardQueue(size int, conn netpoll.Connection) (queue *ShardQueue) {
	if size <= 0 {
		size = max(ShardSize, 1)
	}
	q := &ShardQueue{conn: conn, shards: make([]shard, size)}
	q.idle = sync.NewCond(&q.mu)
	return q
}

// Add queues messages to send. Safe for concurrent use. After Close it does
// nothing.
func (q *ShardQueue) Add(gts ...WriterGetter) {
	if len(gts) == 0 || q.closed.Load() {
		return
	}
	s := &q.shards[q.next.Add(1)%uint32(len(q.shards))]
	s.mu.Lock()
	s.getters = append(s.getters, gts...)
	s.mu.Unlock()
	if q.pending.Add(1) == 1 {
		q.mu.Lock()
		q.flushers++
		q.mu.Unlock()
		go q.flushLoop()
	}
}

// Close stops accepting messages and waits until what was added before is
// sent (or failed). It does not close the connection.
func (q *ShardQueue) Close() error {
	q.closed.Store(true)
	q.mu.Lock()
	for q.flushers > 0 {
		q.idle.Wait()
	}
	q.mu.Unlock()
	return nil
}

// flushLoop sends batches until no Add arrived during the last one.
func (q *ShardQueue) flushLoop() {
	var batch []WriterGetter
	for {
		seen := q.pending.Load()
		batch = q.collect(batch[:0])
		q.send(batch)
		clear(batch)
		if q.pending.CompareAndSwap(seen, 0) {
			break
		}
	}
	if h := testHookFlusherDone; h != nil {
		h()
	}
	q.mu.Lock()
	q.flushers--
	if q.flushers == 0 {
		q.idle.Broadcast()
	}
	q.mu.Unlock()
}

// testHookFlusherDone, if set, runs when a flusher has decided to stop and
// before it is counted out, the moment a new Add can start the next one.
var testHookFlusherDone func()

// collect takes every shard's getters, in shard order.
func (q *ShardQueue) collect(batch []WriterGetter) []WriterGetter {
	for i := range q.shards {
		s := &q.shards[i]
		s.mu.Lock()
		batch = append(batch, s.getters...)
		clear(s.getters)
		s.getters = s.getters[:0]
		s.mu.Unlock()
	}
	return batch
}

// send appends the batch's messages and flushes them once. On a failure the
// connection is closed: its peer can no longer tell which messages arrived.
func (q *ShardQueue) send(batch []WriterGetter) {
	if len(batch) == 0 {
		return
	}
	w := q.conn.Writer()
	if w == nil { // a connection without a writer (a test double): nothing can be sent
		return
	}
	appended := false
	for _, get := range batch {
		buf, isNil := get()
		if isNil || buf == nil {
			continue
		}
		if err := w.Append(buf); err != nil {
			_ = q.conn.Close()
			return
		}
		appended = true
	}
	if appended {
		if err := w.Flush(); err != nil {
			_ = q.conn.Close()
		}
	}
}
