package backend

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicelb/sluice/config"
)

// BenchmarkLeastConnPick is the per-connection cost of server selection:
// Acquire and Release on a 4-server leastconn backend with connections
// held, as the dispatcher tier runs it. The target is 0 allocs/op.
func BenchmarkLeastConnPick(b *testing.B) {
	benchPick(b, config.BalanceLeastConn)
}

func BenchmarkPick(b *testing.B) {
	for _, balance := range []config.Balance{config.BalanceRoundRobin, config.BalanceSource, config.BalanceFirst} {
		b.Run(string(balance), func(b *testing.B) { benchPick(b, balance) })
	}
}

func benchPick(b *testing.B, balance config.Balance) {
	var servers []*config.Server
	for i := 1; i <= 4; i++ {
		servers = append(servers, srv(b, i, fmt.Sprintf("s%d", i), weight(i)))
	}
	be := New(proxy(balance, servers...), nil)
	ctx := context.Background()
	src := client(7)
	// Some connections stay open so that the servers are unequal.
	for i := 0; i < 10; i++ {
		acquire(b, be, client(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s, err := be.Acquire(ctx, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.Release()
	}
}

// BenchmarkLeastConnPickParallel is the same under contention from every
// core.
func BenchmarkLeastConnPickParallel(b *testing.B) {
	var servers []*config.Server
	for i := 1; i <= 4; i++ {
		servers = append(servers, srv(b, i, fmt.Sprintf("s%d", i)))
	}
	be := New(proxy(config.BalanceLeastConn, servers...), nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx, src := context.Background(), client(3)
		for pb.Next() {
			s, err := be.Acquire(ctx, src, nil)
			if err != nil {
				b.Error(err)
				return
			}
			s.Release()
		}
	})
}
