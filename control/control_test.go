package control

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/sluicelb/sluice/config"
)

func TestMessagesAndDescriptors(t *testing.T) {
	a, theirs, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	b, err := FromFile(theirs)
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	big := strings.Repeat("x", 300<<10) // larger than one read
	msgs := []Msg{
		{Kind: KindConfig, Process: 2, Config: &config.Config{Files: []string{big}}, Listeners: []Listener{{Key: "tcp:a", FD: 0, Attached: true}}},
		{Kind: KindPeer, Peer: 3, Alive: true},
		{Kind: KindStop},
	}
	// Send from another goroutine: a message larger than the socket
	// buffer needs the receiver to read meanwhile.
	sent := make(chan error, 1)
	go func() {
		defer w.Close()
		if err := a.Send(msgs[0], w); err != nil {
			sent <- err
			return
		}
		for _, m := range msgs[1:] {
			if err := a.Send(m); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i, want := range msgs {
		raw, err := b.Receive()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		got, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != want.Kind || got.Process != want.Process || got.Peer != want.Peer || got.Alive != want.Alive {
			t.Fatalf("message %d = %+v, want %+v", i, got, want)
		}
		if i == 0 {
			if got.Config == nil || got.Config.Files[0] != big {
				t.Fatal("large configuration did not arrive whole")
			}
			if len(raw.Files) != 1 {
				t.Fatalf("got %d descriptors, want 1", len(raw.Files))
			}
			// The received descriptor is the pipe's write end.
			if _, err := raw.Files[0].Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			raw.Files[0].Close()
			buf := make([]byte, 2)
			if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "ok" {
				t.Fatalf("read through passed descriptor: %q %v", buf, err)
			}
		} else if len(raw.Files) != 0 {
			t.Fatalf("message %d came with %d descriptors", i, len(raw.Files))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// The peer's death is EOF at once.
	a.Close()
	if _, err := b.Receive(); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want EOF", err)
	}
}
