package dispatcher

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's system calls, those that accept a Socket and hand it over,
// and RawIO's reads and writes (rawio.go) go without the scheduler's
// system-call bookkeeping (RawSyscall).
// Every descriptor they touch is non-blocking, so none of them blocks. As
// ordinary system calls, each one put the goroutine's P in the "in a
// system call" state: one that lasted over 20 µs (a 64 KiB send on
// loopback does, and any call the kernel preempts on a busy machine) let
// sysmon hand the P to another thread, and each call made while the
// process was idle woke sysmon, which then polled every 20 µs for at
// least a millisecond. The dispatcher spent a third of its CPU in sysmon,
// futex wakeups and the scheduler instead of moving bytes.

// splice moves up to n bytes from in to out with splice(2);
// SPLICE_F_NONBLOCK is set.
func splice(in, out, n int) (int64, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if errno != 0 {
		return 0, errno
	}
	return int64(r), nil
}

// epollWait collects the ready events of epfd without waiting.
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func closeFD(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func shutdownWrite(fd int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

func readFD(fd int, b []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// send writes b to the socket fd; a closed peer is EPIPE, without SIGPIPE.
func send(fd int, b []byte) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func writeFD(fd int, b []byte) (int, error) {
	r, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// QuickAck acknowledges at once what the TCP socket fd has received.
func QuickAck(fd int) {
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, uintptr(unsafe.Pointer(&one)), 4, 0)
}

// accept4 takes a connection of the listening socket lfd, non-blocking,
// with the client's address.
func accept4(lfd int) (int, syscall.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unsafe.Sizeof(rsa))
	r, _, errno := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -1, nil, errno
	}
	return int(r), inetSockaddr(&rsa), nil
}

// getsockname returns the local address of the socket fd.
func getsockname(fd int) (syscall.Sockaddr, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unsafe.Sizeof(rsa))
	_, _, errno := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return nil, errno
	}
	return inetSockaddr(&rsa), nil
}

// inetSockaddr decodes an IPv4 or IPv6 address; nil for another family.
func inetSockaddr(rsa *unix.RawSockaddrAny) syscall.Sockaddr {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port)) // network byte order
		return &syscall.SockaddrInet4{Port: int(port[0])<<8 | int(port[1]), Addr: p.Addr}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return &syscall.SockaddrInet6{Port: int(port[0])<<8 | int(port[1]), ZoneId: p.Scope_id, Addr: p.Addr}
	}
	return nil
}

// noDelay sets TCP_NODELAY on fd.
func noDelay(fd int) {
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
}

// recvmsg reads the unix socket fd into b, and the descriptors passed
// with it into oob (close-on-exec).
func recvmsg(fd int, b, oob []byte) (n, oobn, flags int, err error) {
	var h unix.Msghdr
	iov := unix.Iovec{Base: &b[0], Len: uint64(len(b))}
	h.Iov, h.Iovlen = &iov, 1
	h.Control, h.Controllen = &oob[0], uint64(len(oob))
	for {
		r, _, errno := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), unix.MSG_CMSG_CLOEXEC)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, 0, 0, errno
		}
		return int(r), int(h.Controllen), int(h.Flags), nil
	}
}

// sendFD sends msg on the unix socket fd with the descriptor pass attached;
// it says how much of msg the socket took.
func sendFD(fd int, msg []byte, pass int) (int, error) {
	oob := unix.UnixRights(pass)
	h := unix.Msghdr{Control: &oob[0], Controllen: uint64(len(oob))}
	iov := unix.Iovec{Base: &msg[0], Len: uint64(len(msg))}
	h.Iov, h.Iovlen = &iov, 1
	r, _, errno := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&h)), unix.MSG_NOSIGNAL)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
