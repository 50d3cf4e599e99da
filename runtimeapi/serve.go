package runtimeapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// maxLine bounds one input line. HAProxy bounds it by its buffer size
	// (16 KiB); a little more room costs nothing and fits long ';' chains.
	maxLine = 64 << 10
	// maxConns is how many connections one socket serves at once, HAProxy's
	// "stats maxconn" default. Others wait in the kernel's backlog.
	maxConns = 10
	// defaultTimeout is HAProxy's "stats timeout" default.
	defaultTimeout = 10 * time.Second
	// lingerTime bounds how long a closing connection waits for the client
	// to finish sending, so that unread input does not reset the answer.
	lingerTime = 500 * time.Millisecond
)

var errLineTooLong = errors.New("command line too long")

// Serve answers HAProxy runtime API commands on ln at the given level
// ("user", "operator" or "admin"; "" means operator, HAProxy's default)
// until ctx is done. timeout is the stats timeout, how long a connection
// may stay idle (0 means HAProxy's 10s). Serve closes ln, and returns once
// every connection has ended: nil when ctx ended it, the error otherwise.
func Serve(ctx context.Context, ln net.Listener, level string, app Appliance, timeout time.Duration, log *slog.Logger) error {
	lvl, err := parseLevel(level)
	if err != nil {
		ln.Close()
		return err
	}
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	c := newCLI(app, log)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // closes ln and every connection
		wg.Wait()
	}()
	context.AfterFunc(ctx, func() { ln.Close() })

	slots := make(chan struct{}, maxConns)
	var backoff time.Duration
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		conn, err := ln.Accept()
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("stats socket %s: %w", ln.Addr(), err)
			}
			// Out of descriptors or an aborted handshake: wait and retry
			// rather than spin or give up the socket.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			c.log.Warn("stats socket accept", "addr", ln.Addr().String(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			c.serveConn(ctx, conn, lvl, timeout)
		}()
	}
}

// serveConn runs one connection: one line in one-shot mode, lines until
// "quit", EOF or the idle timeout in interactive mode.
func (c *cli) serveConn(ctx context.Context, conn net.Conn, lvl level, timeout time.Duration) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	r := bufio.NewReaderSize(conn, 4096)
	s := &session{level: lvl, timeout: timeout}
	for {
		conn.SetReadDeadline(time.Now().Add(s.timeout))
		line, err := readLine(r, maxLine)
		if errors.Is(err, errLineTooLong) {
			conn.SetWriteDeadline(time.Now().Add(s.timeout))
			io.WriteString(conn, "Command line too long.\n\n")
			linger(conn)
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("stats socket read", "err", err)
			}
			return
		}
		if strings.HasSuffix(strings.TrimRight(line, " \t"), payloadMark) {
			payload, err := readPayload(r, maxLine-len(line))
			if errors.Is(err, errLineTooLong) {
				conn.SetWriteDeadline(time.Now().Add(s.timeout))
				io.WriteString(conn, "Payload too long.\n\n")
				linger(conn)
				return
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return
			}
			line += "\n" + payload
		}
		if err := c.runLine(ctx, s, line, deadlineWriter{conn, s}); err != nil {
			return
		}
		if s.quit || !s.prompt {
			linger(conn)
			return
		}
	}
}

// deadlineWriter gives each write to a connection the session's timeout,
// so that a client that stops reading cannot hold the connection.
type deadlineWriter struct {
	conn net.Conn
	s    *session
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.conn.SetWriteDeadline(time.Now().Add(w.s.timeout))
	return w.conn.Write(p)
}

// readPayload reads the lines of a payload up to an empty line (or the
// end of the input), at most max bytes, and returns them joined by '\n'.
func readPayload(r *bufio.Reader, max int) (string, error) {
	var lines []string
	size := 0
	for {
		line, err := readLine(r, max-size)
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		if line == "" {
			return strings.Join(lines, "\n"), nil
		}
		size += len(line) + 1
		lines = append(lines, line)
	}
}

// readLine reads one line without its end, at most max bytes. A last line
// without a newline counts as a line.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf)+len(chunk) > max {
			return "", errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return string(trimEOL(buf)), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return string(trimEOL(buf)), nil
		default:
			return "", err
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// linger ends the connection politely: it stops sending, then reads what
// the client may still send for a moment, so that unread input does not
// make the kernel reset the connection before the client has the answer.
func linger(conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(lingerTime))
	io.Copy(io.Discard, io.LimitReader(conn, maxLine))
}
