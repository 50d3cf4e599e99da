// Package accesslog writes HAProxy's access log lines (the tcplog, httplog
// and default formats) and sends them to syslog, unix datagram sockets or
// standard output, framed as HAProxy does (RFC 3164, RFC 5424, raw, ...).
//
// Formatting appends to a caller's buffer and does not allocate, so a
// connection can log from its own goroutine without garbage.
package accesslog

import (
	"net/netip"
	"strconv"
	"time"
)

// An Entry is what an access log line reports about one TCP session or one
// HTTP transaction. Its zero value is a session that reached nothing, except
// for the timers, where zero is a real 0 ms: set NotReached for "-1".
type Entry struct {
	// Client is the client address as the frontend sees it, after any PROXY
	// header. The zero value means a connection accepted on a unix socket,
	// printed "unix:" followed by ListenerID, as HAProxy does.
	Client netip.AddrPort
	// Local is the address the client connected to; only the default
	// (non-tcplog) format prints it.
	Local netip.AddrPort
	// ListenerID is the id of the bind that accepted the connection.
	ListenerID int

	// Date is the accept date for tcplog and the date the request started
	// for httplog (HAProxy's %t and %tr), printed in its own location (local
	// time when it comes from time.Now, like HAProxy) with milliseconds.
	Date time.Time

	Frontend string
	// Mode is the frontend's mode, "tcp" or "http", for the default format.
	Mode string
	// TLS marks a connection that arrived over TLS: HAProxy prints "~" after
	// the frontend name.
	TLS     bool
	Backend string
	// Server is the last server tried; "" prints "<NOSRV>".
	Server string

	// Timers (HAProxy section 8.4), printed in milliseconds. A negative
	// value means the event was not reached and prints "-1". tcplog prints
	// Tw/Tc/Tt, httplog TR/Tw/Tc/Tr/Ta.
	TR, Tw, Tc, Tr, Ta, Tt time.Duration
	// LogASAP marks a line emitted before the end of the session ("option
	// logasap"): Tt, Ta and BytesRead are then partial and get a '+' prefix.
	LogASAP bool

	// Status is the HTTP status sent to the client; 0 (none) prints "-1".
	Status int
	// BytesRead counts the bytes sent to the client (headers included).
	BytesRead int64

	// Term is the termination state (HAProxy section 8.5), for example "--",
	// "cD", "SC" or "CR--". tcplog prints its first 2 characters, httplog 4;
	// missing characters print as '-'.
	Term string

	ActConn, FeConn, BeConn, SrvConn int
	// Retries counts connection retries; Redispatched adds HAProxy's '+'
	// prefix, meaning the last retry went to another server.
	Retries      int
	Redispatched bool
	SrvQueue     int // position in the server queue
	BackendQueue int // position in the backend queue

	// Method, URI and Version are the request line. An empty Method prints
	// "<BADREQ>", as HAProxy 2.x does when no valid request was received.
	Method, URI, Version string
}

// NotReached is a timer value for an event that did not happen.
const NotReached time.Duration = -1

// AppendTCP appends the body of a tcplog line ("option tcplog"), without a
// newline:
//
//	127.0.0.1:46552 [25/Nov/2026:10:12:01.234] dispatcher dispatcher/process2 0/0/5012 1234 -- 1/1/0/0/0 0/0
func AppendTCP(dst []byte, e *Entry) []byte {
	dst = appendHead(dst, e)
	dst = appendTimer(dst, e.Tw, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Tc, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Tt, e.LogASAP)
	dst = append(dst, ' ')
	dst = appendBytes(dst, e)
	dst = append(dst, ' ')
	dst = appendTerm(dst, e.Term, 2)
	dst = append(dst, ' ')
	return appendCounters(dst, e)
}

// AppendHTTP appends the body of an httplog line ("option httplog"), without
// a newline; no cookies or headers are captured:
//
//	10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 "GET /index.html HTTP/1.1"
func AppendHTTP(dst []byte, e *Entry) []byte {
	dst = appendHead(dst, e)
	dst = appendTimer(dst, e.TR, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Tw, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Tc, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Tr, false)
	dst = append(dst, '/')
	dst = appendTimer(dst, e.Ta, e.LogASAP)
	dst = append(dst, ' ')
	if e.Status > 0 {
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
	} else {
		dst = append(dst, "-1"...)
	}
	dst = append(dst, ' ')
	dst = appendBytes(dst, e)
	dst = append(dst, " - - "...) // captured request and response cookies
	dst = appendTerm(dst, e.Term, 4)
	dst = append(dst, ' ')
	dst = appendCounters(dst, e)
	dst = append(dst, ' ', '"')
	if e.Method == "" {
		dst = append(dst, "<BADREQ>"...)
	} else {
		dst = appendEscaped(dst, e.Method)
		dst = append(dst, ' ')
		dst = appendEscaped(dst, e.URI)
		if e.Version != "" {
			dst = append(dst, ' ')
			dst = appendEscaped(dst, e.Version)
		}
	}
	return append(dst, '"')
}

// AppendConnect appends HAProxy's default log line, emitted at accept time
// when a frontend has neither tcplog nor httplog:
//
//	Connect from 10.0.1.2:33312 to 10.0.3.31:8012 (www/HTTP)
//
// For a unix socket only the listener is known: "Connect to unix:2 (www/TCP)".
func AppendConnect(dst []byte, e *Entry) []byte {
	if e.Client.IsValid() {
		dst = append(dst, "Connect from "...)
		dst = appendAddr(dst, e.Client, e.ListenerID)
		dst = append(dst, " to "...)
		dst = appendAddr(dst, e.Local, e.ListenerID)
	} else {
		dst = append(dst, "Connect to unix:"...)
		dst = strconv.AppendInt(dst, int64(e.ListenerID), 10)
	}
	dst = append(dst, " ("...)
	dst = append(dst, e.Frontend...)
	if e.Mode == "http" {
		dst = append(dst, "/HTTP)"...)
	} else {
		dst = append(dst, "/TCP)"...)
	}
	return dst
}

// appendHead appends the fields tcplog and httplog share, up to the timers:
// client, date, frontend, backend/server.
func appendHead(dst []byte, e *Entry) []byte {
	dst = appendAddr(dst, e.Client, e.ListenerID)
	dst = append(dst, ' ', '[')
	dst = appendDate(dst, e.Date)
	dst = append(dst, ']', ' ')
	dst = append(dst, e.Frontend...)
	if e.TLS {
		dst = append(dst, '~')
	}
	dst = append(dst, ' ')
	dst = append(dst, e.Backend...)
	dst = append(dst, '/')
	if e.Server == "" {
		dst = append(dst, "<NOSRV>"...)
	} else {
		dst = append(dst, e.Server...)
	}
	return append(dst, ' ')
}

// appendAddr appends "ip:port" (IPv6 without brackets, as HAProxy prints
// it), or "unix:ID" for a unix socket.
func appendAddr(dst []byte, a netip.AddrPort, listenerID int) []byte {
	if !a.IsValid() {
		dst = append(dst, "unix:"...)
		return strconv.AppendInt(dst, int64(listenerID), 10)
	}
	dst = a.Addr().AppendTo(dst)
	dst = append(dst, ':')
	return strconv.AppendUint(dst, uint64(a.Port()), 10)
}

const months = "JanFebMarAprMayJunJulAugSepOctNovDec"

// appendDate appends "25/Nov/2026:10:12:01.234".
func appendDate(dst []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	dst = append2(dst, day)
	dst = append(dst, '/')
	dst = append(dst, months[3*(month-1):3*month]...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(year), 10)
	dst = append(dst, ':')
	dst = append2(dst, hour)
	dst = append(dst, ':')
	dst = append2(dst, min)
	dst = append(dst, ':')
	dst = append2(dst, sec)
	ms := t.Nanosecond() / 1e6
	return append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
}

func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}

func appendTimer(dst []byte, d time.Duration, partial bool) []byte {
	if d < 0 {
		return append(dst, "-1"...)
	}
	if partial {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, d.Milliseconds(), 10)
}

func appendBytes(dst []byte, e *Entry) []byte {
	if e.LogASAP {
		dst = append(dst, '+')
	}
	return strconv.AppendInt(dst, e.BytesRead, 10)
}

// appendTerm appends the first n characters of the termination state,
// padded with '-'.
func appendTerm(dst []byte, term string, n int) []byte {
	for i := range n {
		if i < len(term) {
			dst = append(dst, term[i])
		} else {
			dst = append(dst, '-')
		}
	}
	return dst
}

// appendCounters appends "actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue".
func appendCounters(dst []byte, e *Entry) []byte {
	dst = strconv.AppendInt(dst, int64(e.ActConn), 10)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(e.FeConn), 10)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(e.BeConn), 10)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(e.SrvConn), 10)
	dst = append(dst, '/')
	if e.Redispatched {
		dst = append(dst, '+')
	}
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(e.SrvQueue), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, int64(e.BackendQueue), 10)
}

// appendEscaped appends s with HAProxy's log encoding (section 8.6): bytes
// outside 32..126, '"' and '#' become '#' and two hex digits.
func appendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 32 || c > 126 || c == '"' || c == '#' {
			dst = append(dst, '#', hex[c>>4], hex[c&15])
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}
