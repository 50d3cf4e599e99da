package appliance

import (
	"testing"
	"time"

	"github.com/sluicelb/sluice/config"
)

func TestKeyRotation(t *testing.T) {
	cfg := &config.Config{Proxies: []*config.Proxy{{Binds: []*config.Bind{
		{SSL: true, TLS: config.BindSSL{ECHPublicName: "public.example"}},
		{SSL: true},
	}}}}
	start := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var k keyState
	if changed, err := k.rotate(cfg, start); err != nil || !changed {
		t.Fatalf("first rotate: changed %v, %v", changed, err)
	}
	if len(k.Tickets) != 1 || len(k.ECH["public.example"]) != 1 {
		t.Fatalf("after start: %d ticket keys, %d ECH keys", len(k.Tickets), len(k.ECH["public.example"]))
	}
	first := k.Tickets[0]
	if changed, _ := k.rotate(cfg, start.Add(time.Hour)); changed {
		t.Fatal("rotated before its time")
	}
	if got := k.nextRotation(); !got.Equal(start.Add(ticketRotation)) {
		t.Fatalf("next rotation %v", got)
	}
	// Tickets: a new encrypting key every period, three kept.
	for i := 1; i <= 4; i++ {
		if changed, _ := k.rotate(cfg, start.Add(time.Duration(i)*ticketRotation)); !changed {
			t.Fatalf("rotation %d did nothing", i)
		}
	}
	if len(k.Tickets) != ticketKeep || k.Tickets[0] == first || k.Tickets[2] == first {
		t.Fatalf("ticket keys after 4 rotations: %d, the first still there: %v", len(k.Tickets), k.Tickets[2] == first)
	}
	// ECH: the previous key kept, with a new config id, no longer offered
	// as a retry configuration.
	keys := k.ECH["public.example"]
	if len(keys) == 2 && (!keys[0].SendAsRetry || keys[1].SendAsRetry) {
		t.Errorf("SendAsRetry: newest %v, previous %v", keys[0].SendAsRetry, keys[1].SendAsRetry)
	}
	if len(keys) != echKeep || keys[0].Config[4] == keys[1].Config[4] {
		t.Fatalf("ECH keys: %d, ids %d %d", len(keys), keys[0].Config[4], keys[1].Config[4])
	}
	// A public name no bind uses any more loses its keys.
	cfg.Proxies[0].Binds[0].TLS.ECHPublicName = "other.example"
	if changed, _ := k.rotate(cfg, start.Add(48*time.Hour+time.Minute)); !changed || k.ECH["public.example"] != nil || len(k.ECH["other.example"]) != 1 {
		t.Fatalf("after a rename: %v", k.ECH)
	}
}
