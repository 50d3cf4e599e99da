package worker

import (
	"slices"
	"testing"
)

func TestQuietReleaseDue(t *testing.T) {
	const kib, mib = 1 << 10, 1 << 20
	// Each case is a run of allocation counters, one per tick, starting
	// from 0 with nothing released; want is the ticks that release.
	cases := []struct {
		name  string
		ticks []uint64
		want  []int
	}{
		{"idle from the start", []uint64{0, 10 * kib, 20 * kib}, nil},
		{"steady traffic", []uint64{8 * mib, 16 * mib, 24 * mib, 32 * mib}, nil},
		{"burst then quiet", []uint64{8 * mib, 17 * mib, 17*mib + 100*kib, 17*mib + 200*kib}, []int{2}},
		{"small burst then quiet", []uint64{4 * mib, 4 * mib, 4 * mib}, nil},
		{"two bursts", []uint64{20 * mib, 20 * mib, 20 * mib, 40 * mib, 40 * mib}, []int{1, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := quietRelease{quiet: 256 * kib, burst: 16 * mib}
			var got []int
			for i, a := range c.ticks {
				if q.due(a) {
					got = append(got, i)
					q.released = a
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("released at ticks %v, want %v", got, c.want)
			}
		})
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 800}, // Go's own floor, 4 MiB × 800/100, is the 32 MiB
		{1 * mib, 800},
		{4 * mib, 700},
		{8 * mib, 300},
		{16 * mib, 100},
		{20 * mib, 100},
		{200 * mib, 100},
	} {
		if got := gcPercentFor(tc.live, 32*mib); got != tc.want {
			t.Errorf("live %d MiB: GOGC %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}
