package netpoll

import (
	"context"
	"testing"
)

// BenchmarkConnectionPoolGetPut measures taking an idle connection and giving
// it back, from GOMAXPROCS goroutines at once: the pool's own cost, with no
// traffic. "size=1" makes every goroutine but one wait for the connection.
func BenchmarkConnectionPoolGetPut(b *testing.B) {
	cases := []struct {
		name string
		opts []PoolOption
	}{
		{"unbounded", nil},
		{"size=1", []PoolOption{WithPoolSize(1)}},
		{"timeouts", []PoolOption{WithPoolIdleTimeout(1 << 40), WithPoolMaxLifetime(1 << 40)}},
	}
	for _, tt := range cases {
		b.Run(tt.name, func(b *testing.B) {
			f := newPoolFixture(b, tt.opts...)
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := f.pool.Get(ctx)
					if err != nil {
						b.Error(err)
						return
					}
					if err = f.pool.Put(c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
