package appliance

import (
	"context"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sluicelb/sluice/config"
)

// socketCache holds every listening socket of the configuration, opened once
// by the master and kept for as long as a bind uses it. Children get
// duplicates; because the master's copy stays open, connections that arrive
// while a child restarts wait in the kernel's backlog instead of being
// refused.
type socketCache struct {
	files map[string]*os.File // by addr.Addr.Key()
}

func newSocketCache() *socketCache {
	return &socketCache{files: make(map[string]*os.File)}
}

// open opens the sockets of every bind of cfg that the cache does not hold
// yet. On error, the sockets it opened are closed again and the cache is as
// it was.
func (sc *socketCache) open(ctx context.Context, cfg *config.Config) error {
	var opened []string
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			key := b.Addr.Key()
			if _, ok := sc.files[key]; ok {
				continue
			}
			f, err := listenFile(ctx, b)
			if err != nil {
				for _, k := range opened {
					sc.files[k].Close()
					delete(sc.files, k)
				}
				return err
			}
			sc.files[key] = f
			opened = append(opened, key)
		}
	}
	return nil
}

func listenFile(ctx context.Context, b *config.Bind) (*os.File, error) {
	ln, err := b.Addr.Listen(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", b.Pos.File, b.Pos.Line, err)
	}
	defer ln.Close() // the duplicate below keeps the socket open
	type filer interface{ File() (*os.File, error) }
	f, err := ln.(filer).File()
	if err != nil {
		return nil, fmt.Errorf("bind %s: %w", b.Addr.Text, err)
	}
	defer f.Close()
	return keepNonblocking(f)
}

// keepNonblocking returns a duplicate of a listener's file that keeps the
// socket in non-blocking mode when passed to a child. The file net gives
// puts the socket in blocking mode when its descriptor is taken (os/exec
// does so for ExtraFiles), and that mode belongs to the socket, not to the
// descriptor: the children already accepting on it would then block in
// accept(2), where closing their listener cannot reach them.
func keepNonblocking(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var dup int
	var derr error
	if err := rc.Control(func(fd uintptr) {
		dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup listener: %w", derr)
	}
	return os.NewFile(uintptr(dup), f.Name()), nil
}

// filesFor returns the sockets of the binds that accept in process n, in a
// stable order, with their keys.
func (sc *socketCache) filesFor(cfg *config.Config, n int) (keys []string, files []*os.File) {
	seen := make(map[string]bool)
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			key := b.Addr.Key()
			if !b.AcceptsIn(n) || seen[key] {
				continue
			}
			if f, ok := sc.files[key]; ok {
				seen[key] = true
				keys = append(keys, key)
				files = append(files, f)
			}
		}
	}
	return keys, files
}

// prune closes the sockets no bind of cfg uses any more.
func (sc *socketCache) prune(cfg *config.Config) {
	used := make(map[string]bool)
	for _, p := range cfg.Proxies {
		for _, b := range p.Binds {
			used[b.Addr.Key()] = true
		}
	}
	for k, f := range sc.files {
		if !used[k] {
			f.Close()
			delete(sc.files, k)
		}
	}
}

// closeAll closes every socket.
func (sc *socketCache) closeAll() {
	for k, f := range sc.files {
		f.Close()
		delete(sc.files, k)
	}
}

// Compile-time check that the listeners Go returns can give their file.
var (
	_ interface{ File() (*os.File, error) } = (*net.TCPListener)(nil)
	_ interface{ File() (*os.File, error) } = (*net.UnixListener)(nil)
)
