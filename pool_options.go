package netpoll

import (
	"errors"
	"fmt"
	"time"
)

// PoolOption configures a ConnectionPool; pass it to [NewConnectionPool].
type PoolOption struct {
	apply func(o *poolOptions)
}

// poolOptions is what the PoolOption values of one pool set.
type poolOptions struct {
	size        int // connections out at once; 0 means no limit
	maxIdle     int // -1 until set: then it follows size
	idleTimeout time.Duration
	maxLifetime time.Duration
}

// defaultPoolMaxIdle is the idle bound of a pool with no size limit.
const defaultPoolMaxIdle = 64

var errPoolOption = errors.New("netpoll: invalid connection pool option")

// WithPoolSize bounds the connections handed out and not yet returned at n.
// Get then waits for a Put (or Close), as long as its context allows. Since
// Get prefers idle connections to dialing, the pool never holds more than n
// connections in all. Zero, the default, means no bound.
func WithPoolSize(n int) PoolOption {
	return PoolOption{func(o *poolOptions) { o.size = n }}
}

// WithPoolMaxIdle bounds the idle connections kept for reuse; a connection
// returned past it is closed. Zero keeps none. The default is the pool size,
// or 64 without a size.
func WithPoolMaxIdle(n int) PoolOption {
	return PoolOption{func(o *poolOptions) { o.maxIdle = n }}
}

// WithPoolIdleTimeout closes connections that sat idle in the pool for d, so
// that the pool does not keep connections that a server or a middlebox is
// about to drop. Zero, the default, keeps them.
func WithPoolIdleTimeout(d time.Duration) PoolOption {
	return PoolOption{func(o *poolOptions) { o.idleTimeout = d }}
}

// WithPoolMaxLifetime closes connections dialed more than d ago when they are
// returned or found idle, so that traffic moves to new servers behind a
// changing address. Zero, the default, means no limit.
func WithPoolMaxLifetime(d time.Duration) PoolOption {
	return PoolOption{func(o *poolOptions) { o.maxLifetime = d }}
}

// newPoolOptions applies opts over the defaults and checks the result.
func newPoolOptions(opts []PoolOption) (poolOptions, error) {
	o := poolOptions{maxIdle: -1}
	for _, opt := range opts {
		if opt.apply != nil {
			opt.apply(&o)
		}
	}
	switch {
	case o.size < 0:
		return o, fmt.Errorf("%w: size %d", errPoolOption, o.size)
	case o.maxIdle < -1:
		return o, fmt.Errorf("%w: max idle %d", errPoolOption, o.maxIdle)
	case o.idleTimeout < 0:
		return o, fmt.Errorf("%w: idle timeout %v", errPoolOption, o.idleTimeout)
	case o.maxLifetime < 0:
		return o, fmt.Errorf("%w: max lifetime %v", errPoolOption, o.maxLifetime)
	}
	if o.maxIdle == -1 {
		o.maxIdle = o.size
		if o.size == 0 {
			o.maxIdle = defaultPoolMaxIdle
		}
	}
	return o, nil
}
