package worker

import (
	"runtime"
	"testing"
)

func TestCPUs(t *testing.T) {
	start := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(start) })
	procs := func() int { return runtime.GOMAXPROCS(0) }
	settled := func() bool { return true }
	calm := func() bool { return false }

	runtime.GOMAXPROCS(2)
	c := newCPUs(false)
	c.setBase(true)
	if procs() != 1 {
		t.Fatalf("one thread of the configuration: GOMAXPROCS %d, want 1", procs())
	}
	ran := 0
	c.withSpare(func() { ran = procs() })
	if ran != 2 || procs() != 1 {
		t.Fatalf("a chore ran with %d CPUs and left %d, want 2 then 1", ran, procs())
	}
	if !c.spare(settled) || procs() != 2 {
		t.Fatalf("a yielding handshake: GOMAXPROCS %d, want 2", procs())
	}
	c.withSpare(func() { ran = procs() })
	if ran != 2 || procs() != 2 {
		t.Fatalf("a chore while yielding ran with %d CPUs and left %d, want 2 and 2", ran, procs())
	}
	c.calm.Stop()
	c.lowerWhenCalm(settled)
	if procs() != 2 {
		t.Fatalf("settled sessions left: GOMAXPROCS %d, want 2", procs())
	}
	c.calm.Stop()
	c.lowerWhenCalm(calm)
	if procs() != 1 {
		t.Fatalf("no settled session: GOMAXPROCS %d, want 1", procs())
	}
	c.setBase(false)
	if procs() != 2 {
		t.Fatalf("a process of its own: GOMAXPROCS %d, want all 2", procs())
	}

	runtime.GOMAXPROCS(1)
	one := newCPUs(false)
	if one.spare(settled) || procs() != 1 {
		t.Fatal("a process allowed one CPU got a spare one")
	}

	runtime.GOMAXPROCS(3)
	env := newCPUs(true)
	env.setBase(true)
	env.withSpare(func() {})
	if !env.spare(settled) || procs() != 3 {
		t.Fatalf("GOMAXPROCS from the environment changed to %d, want 3 kept", procs())
	}
}
