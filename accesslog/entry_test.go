package accesslog

import (
	"net/netip"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func date(y int, mo time.Month, d, h, mi, s, msec int) time.Time {
	return time.Date(y, mo, d, h, mi, s, msec*1e6, time.UTC)
}

func addr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Lines from HAProxy's configuration manual (sections 8.2.2, 8.2.3 and 8.9)
// with the syslog header removed, and lines logged by HAProxy 2.6 itself.
func TestAppendTCP(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{
			"manual 8.2.2",
			Entry{Client: addr("10.0.1.2:33313"), Date: date(2009, 2, 6, 12, 12, 51, 443), Frontend: "fnt", Backend: "bck", Server: "srv1",
				Tw: 0, Tc: 0, Tt: ms(5007), BytesRead: 212, Term: "--", Retries: 3},
			"10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0",
		},
		{
			"manual 8.9, client timeout",
			Entry{Client: addr("127.0.0.1:34550"), Date: date(2003, 10, 15, 15, 24, 28, 312), Frontend: "px-tcp", Backend: "px-tcp", Server: "srv1",
				Tt: ms(5007), Term: "cD"},
			"127.0.0.1:34550 [15/Oct/2003:15:24:28.312] px-tcp px-tcp/srv1 0/0/5007 0 cD 0/0/0/0/0 0/0",
		},
		{
			"brief example",
			Entry{Client: addr("127.0.0.1:46552"), Date: date(2026, 11, 25, 10, 12, 1, 234), Frontend: "dispatcher", Backend: "dispatcher", Server: "process2",
				Tt: ms(5012), BytesRead: 1234, Term: "--", ActConn: 1, FeConn: 1},
			"127.0.0.1:46552 [25/Nov/2026:10:12:01.234] dispatcher dispatcher/process2 0/0/5012 1234 -- 1/1/0/0/0 0/0",
		},
		{
			"HAProxy 2.6, TLS frontend",
			Entry{Client: addr("127.0.0.1:54972"), Date: date(2026, 11, 25, 7, 5, 17, 294), Frontend: "tcpx", TLS: true, Backend: "tcpx", Server: "s1",
				Tw: ms(3), Tc: 0, Tt: ms(3), BytesRead: 841, Term: "--", ActConn: 1, FeConn: 1},
			"127.0.0.1:54972 [25/Nov/2026:07:05:17.294] tcpx~ tcpx/s1 3/0/3 841 -- 1/1/0/0/0 0/0",
		},
		{
			"HAProxy 2.6, unix socket",
			Entry{ListenerID: 4, Date: date(2026, 11, 25, 7, 5, 17, 302), Frontend: "tcpx", Backend: "tcpx", Server: "s1",
				Tw: ms(1), Tt: 0, BytesRead: 841, Term: "--", ActConn: 1, FeConn: 1},
			"unix:4 [25/Nov/2026:07:05:17.302] tcpx tcpx/s1 1/0/0 841 -- 1/1/0/0/0 0/0",
		},
		{
			"HAProxy 2.6, IPv6 client",
			Entry{Client: addr("[::1]:51734"), Date: date(2026, 11, 25, 7, 5, 30, 482), Frontend: "tcpx", Backend: "tcpx", Server: "s1",
				Tw: ms(1), Tt: ms(1), BytesRead: 841, Term: "--", ActConn: 1, FeConn: 1},
			"::1:51734 [25/Nov/2026:07:05:30.482] tcpx tcpx/s1 1/0/1 841 -- 1/1/0/0/0 0/0",
		},
		{
			"no server, timers not reached, 4-char state cut to 2",
			Entry{Client: addr("192.0.2.1:1"), Date: date(2026, 1, 2, 3, 4, 5, 6), Frontend: "f", Backend: "b",
				Tw: NotReached, Tc: NotReached, Tt: ms(12), Term: "CQ--", ActConn: 7, FeConn: 6, BeConn: 5, SrvConn: 0, SrvQueue: 2, BackendQueue: 3},
			"192.0.2.1:1 [02/Jan/2026:03:04:05.006] f b/<NOSRV> -1/-1/12 0 CQ 7/6/5/0/0 2/3",
		},
		{
			"logasap and redispatch",
			Entry{Client: addr("192.0.2.1:1"), Date: date(2026, 12, 31, 23, 59, 59, 999), Frontend: "f", Backend: "b", Server: "s2",
				Tw: ms(1), Tc: ms(2), Tt: ms(3), LogASAP: true, BytesRead: 10, Retries: 3, Redispatched: true},
			"192.0.2.1:1 [31/Dec/2026:23:59:59.999] f b/s2 1/2/+3 +10 -- 0/0/0/0/+3 0/0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendTCP(nil, &tt.e)); got != tt.want {
				t.Errorf("\ngot  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendHTTP(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{
			"manual 8.2.3 (without the captured headers)",
			Entry{Client: addr("10.0.1.2:33317"), Date: date(2009, 2, 6, 12, 14, 14, 655), Frontend: "http-in", Backend: "static", Server: "srv1",
				TR: ms(10), Tw: 0, Tc: ms(30), Tr: ms(69), Ta: ms(109), Status: 200, BytesRead: 2750, Term: "----",
				ActConn: 1, FeConn: 1, BeConn: 1, SrvConn: 1, Method: "GET", URI: "/index.html", Version: "HTTP/1.1"},
			`10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 "GET /index.html HTTP/1.1"`,
		},
		{
			"manual 8.9, request typed by hand",
			Entry{Client: addr("127.0.0.1:33318"), Date: date(2003, 10, 15, 8, 31, 57, 130), Frontend: "px-http", Backend: "px-http", Server: "srv1",
				TR: ms(6559), Tc: ms(7), Tr: ms(147), Ta: ms(6723), Status: 200, BytesRead: 243,
				ActConn: 5, FeConn: 3, BeConn: 3, SrvConn: 1, Method: "HEAD", URI: "/", Version: "HTTP/1.0"},
			`127.0.0.1:33318 [15/Oct/2003:08:31:57.130] px-http px-http/srv1 6559/0/7/147/6723 200 243 - - ---- 5/3/3/1/0 0/0 "HEAD / HTTP/1.0"`,
		},
		{
			"manual 8.9, queued",
			Entry{Client: addr("127.0.0.1:33319"), Date: date(2003, 10, 15, 8, 31, 57, 149), Frontend: "px-http", Backend: "px-http", Server: "srv1",
				TR: ms(6559), Tw: ms(1230), Tc: ms(7), Tr: ms(147), Ta: ms(6870), Status: 200, BytesRead: 243,
				ActConn: 324, FeConn: 239, BeConn: 239, SrvConn: 99, BackendQueue: 9, Method: "HEAD", URI: "/", Version: "HTTP/1.0"},
			`127.0.0.1:33319 [15/Oct/2003:08:31:57.149] px-http px-http/srv1 6559/1230/7/147/6870 200 243 - - ---- 324/239/239/99/0 0/9 "HEAD / HTTP/1.0"`,
		},
		{
			"manual 8.9, logasap",
			Entry{Client: addr("127.0.0.1:33320"), Date: date(2003, 10, 15, 8, 32, 17, 654), Frontend: "px-http", Backend: "px-http", Server: "srv1",
				TR: ms(9), Tc: ms(7), Tr: ms(14), Ta: ms(30), LogASAP: true, Status: 200, BytesRead: 243,
				ActConn: 3, FeConn: 3, BeConn: 3, SrvConn: 1, Method: "GET", URI: "/image.iso", Version: "HTTP/1.0"},
			`127.0.0.1:33320 [15/Oct/2003:08:32:17.654] px-http px-http/srv1 9/0/7/14/+30 200 +243 - - ---- 3/3/3/1/0 0/0 "GET /image.iso HTTP/1.0"`,
		},
		{
			"manual 8.9, response blocked by the proxy",
			Entry{Client: addr("127.0.0.1:33320"), Date: date(2003, 10, 15, 8, 32, 17, 925), Frontend: "px-http", Backend: "px-http", Server: "srv1",
				TR: ms(9), Tc: ms(7), Tr: ms(14), Ta: ms(30), Status: 502, BytesRead: 243, Term: "PH",
				ActConn: 3, FeConn: 2, BeConn: 2, Method: "GET", URI: "/cgi-bin/bug.cgi?", Version: "HTTP/1.0"},
			`127.0.0.1:33320 [15/Oct/2003:08:32:17.925] px-http px-http/srv1 9/0/7/14/30 502 243 - - PH-- 3/2/2/0/0 0/0 "GET /cgi-bin/bug.cgi? HTTP/1.0"`,
		},
		{
			// The manual's example prints "" for the missing request; HAProxy
			// 2.x, our reference, prints "<BADREQ>".
			"manual 8.9, client aborted before the request",
			Entry{Client: addr("127.0.0.1:34548"), Date: date(2003, 10, 15, 15, 18, 55, 798), Frontend: "px-http", Backend: "px-http",
				TR: NotReached, Tw: NotReached, Tc: NotReached, Tr: NotReached, Ta: ms(8490), Status: 0, Term: "CR",
				ActConn: 2, FeConn: 2, BeConn: 2},
			`127.0.0.1:34548 [15/Oct/2003:15:18:55.798] px-http px-http/<NOSRV> -1/-1/-1/-1/8490 -1 0 - - CR-- 2/2/2/0/0 0/0 "<BADREQ>"`,
		},
		{
			"manual 8.9, request timeout",
			Entry{Client: addr("127.0.0.1:34549"), Date: date(2003, 10, 15, 15, 19, 6, 103), Frontend: "px-http", Backend: "px-http",
				TR: NotReached, Tw: NotReached, Tc: NotReached, Tr: NotReached, Ta: ms(50001), Status: 408, Term: "cR",
				ActConn: 2, FeConn: 2, BeConn: 2},
			`127.0.0.1:34549 [15/Oct/2003:15:19:06.103] px-http px-http/<NOSRV> -1/-1/-1/-1/50001 408 0 - - cR-- 2/2/2/0/0 0/0 "<BADREQ>"`,
		},
		{
			"manual 8.9, server refused the connection",
			Entry{Client: addr("10.0.0.1:34552"), Date: date(2003, 10, 15, 15, 26, 31, 462), Frontend: "px-http", Backend: "px-http", Server: "srv1",
				TR: ms(3183), Tw: NotReached, Tc: NotReached, Tr: NotReached, Ta: ms(11215), Status: 503, Term: "SC--",
				ActConn: 205, FeConn: 202, BeConn: 202, SrvConn: 115, Retries: 3, Method: "HEAD", URI: "/", Version: "HTTP/1.0"},
			`10.0.0.1:34552 [15/Oct/2003:15:26:31.462] px-http px-http/srv1 3183/-1/-1/-1/11215 503 0 - - SC-- 205/202/202/115/3 0/0 "HEAD / HTTP/1.0"`,
		},
		{
			"manual 8.9, redispatched",
			Entry{Client: addr("10.0.0.1:34552"), Date: date(2003, 10, 15, 15, 26, 31, 462), Frontend: "px-http", Backend: "px-http", Server: "srv2",
				TR: ms(3183), Tw: NotReached, Tc: NotReached, Tr: NotReached, Ta: ms(11215), Status: 503, Term: "SC--",
				ActConn: 205, FeConn: 202, BeConn: 202, SrvConn: 115, Retries: 3, Redispatched: true, Method: "HEAD", URI: "/", Version: "HTTP/1.0"},
			`10.0.0.1:34552 [15/Oct/2003:15:26:31.462] px-http px-http/srv2 3183/-1/-1/-1/11215 503 0 - - SC-- 205/202/202/115/+3 0/0 "HEAD / HTTP/1.0"`,
		},
		{
			"HAProxy 2.6, quote in the URI",
			Entry{Client: addr("127.0.0.1:56596"), Date: date(2026, 11, 25, 7, 5, 17, 274), Frontend: "httpx", Backend: "httpx", Server: "s1",
				Tr: ms(4), Ta: ms(4), Status: 404, BytesRead: 500, Term: "----", ActConn: 1, FeConn: 1, Method: "GET", URI: `/x"y`, Version: "HTTP/1.1"},
			`127.0.0.1:56596 [25/Nov/2026:07:05:17.274] httpx httpx/s1 0/0/0/4/4 404 500 - - ---- 1/1/0/0/0 0/0 "GET /x#22y HTTP/1.1"`,
		},
		{
			"HAProxy 2.6, TLS frontend",
			Entry{Client: addr("127.0.0.1:34312"), Date: date(2026, 11, 25, 7, 5, 17, 286), Frontend: "httpx", TLS: true, Backend: "httpx", Server: "s1",
				Tr: ms(1), Ta: ms(1), Status: 200, BytesRead: 840, ActConn: 1, FeConn: 1, Method: "GET", URI: "/", Version: "HTTP/1.1"},
			`127.0.0.1:34312 [25/Nov/2026:07:05:17.286] httpx~ httpx/s1 0/0/0/1/1 200 840 - - ---- 1/1/0/0/0 0/0 "GET / HTTP/1.1"`,
		},
		{
			"HAProxy 2.6, bad request",
			Entry{Client: addr("127.0.0.1:54680"), Date: date(2026, 11, 25, 7, 5, 30, 494), Frontend: "httpx", Backend: "httpx",
				TR: NotReached, Tw: NotReached, Tc: NotReached, Tr: NotReached, Ta: 0, Status: 400, Term: "CR--", ActConn: 1, FeConn: 1},
			`127.0.0.1:54680 [25/Nov/2026:07:05:30.494] httpx httpx/<NOSRV> -1/-1/-1/-1/0 400 0 - - CR-- 1/1/0/0/0 0/0 "<BADREQ>"`,
		},
		{
			"HAProxy 2.6, server down after 3 retries",
			Entry{Client: addr("127.0.0.1:48572"), Date: date(2026, 11, 25, 7, 5, 17, 312), Frontend: "nosrv", Backend: "nosrv", Server: "s1",
				Tc: NotReached, Tr: NotReached, Ta: ms(3004), Status: 503, BytesRead: 217, Term: "SC--", ActConn: 1, FeConn: 1, Retries: 3,
				Method: "GET", URI: "/", Version: "HTTP/1.1"},
			`127.0.0.1:48572 [25/Nov/2026:07:05:17.312] nosrv nosrv/s1 0/0/-1/-1/3004 503 217 - - SC-- 1/1/0/0/3 0/0 "GET / HTTP/1.1"`,
		},
		{
			"non-printable characters, '#' and UTF-8 are encoded",
			Entry{Client: addr("[2001:db8::1]:443"), Date: date(2026, 3, 4, 5, 6, 7, 89), Frontend: "f", Backend: "b", Server: "s",
				Status: 200, Method: "GET", URI: "/a#b\x01\x7f\"é", Version: "HTTP/2.0"},
			`2001:db8::1:443 [04/Mar/2026:05:06:07.089] f b/s 0/0/0/0/0 200 0 - - ---- 0/0/0/0/0 0/0 "GET /a#23b#01#7F#22#C3#A9 HTTP/2.0"`,
		},
		{
			"request line without a version",
			Entry{Client: addr("192.0.2.1:1"), Date: date(2026, 3, 4, 5, 6, 7, 89), Frontend: "f", Backend: "b", Server: "s",
				Status: 200, Method: "GET", URI: "/"},
			`192.0.2.1:1 [04/Mar/2026:05:06:07.089] f b/s 0/0/0/0/0 200 0 - - ---- 0/0/0/0/0 0/0 "GET /"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendHTTP(nil, &tt.e)); got != tt.want {
				t.Errorf("\ngot  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestAppendConnect(t *testing.T) {
	tests := []struct {
		e    Entry
		want string
	}{
		// Manual 8.2.1.
		{Entry{Client: addr("10.0.1.2:33312"), Local: addr("10.0.3.31:8012"), Frontend: "www", Mode: "http"},
			"Connect from 10.0.1.2:33312 to 10.0.3.31:8012 (www/HTTP)"},
		// HAProxy 2.6.
		{Entry{Client: addr("127.0.0.1:52096"), Local: addr("127.0.0.1:17005"), Frontend: "deflt", Mode: "tcp"},
			"Connect from 127.0.0.1:52096 to 127.0.0.1:17005 (deflt/TCP)"},
		{Entry{ListenerID: 2, Frontend: "deflt", Mode: "tcp"}, "Connect to unix:2 (deflt/TCP)"},
	}
	for _, tt := range tests {
		if got := string(AppendConnect(nil, &tt.e)); got != tt.want {
			t.Errorf("\ngot  %s\nwant %s", got, tt.want)
		}
	}
}

// The date is printed in the time's own location, like HAProxy's local time.
func TestDateLocation(t *testing.T) {
	zone := time.FixedZone("X", 2*3600)
	e := Entry{Client: addr("192.0.2.1:1"), Date: time.Date(2026, 11, 25, 23, 30, 0, 5e6, time.UTC).In(zone), Frontend: "f", Backend: "b"}
	want := "192.0.2.1:1 [26/Nov/2026:01:30:00.005] f b/<NOSRV> 0/0/0 0 -- 0/0/0/0/0 0/0"
	if got := string(AppendTCP(nil, &e)); got != want {
		t.Errorf("\ngot  %s\nwant %s", got, want)
	}
}

func sampleEntry() Entry {
	return Entry{
		Client: addr("203.0.113.77:46552"), Date: time.Now(), Frontend: "worker", TLS: true, Backend: "worker", Server: "app",
		TR: ms(1), Tw: 0, Tc: ms(1), Tr: ms(12), Ta: ms(15), Tt: ms(5012), Status: 200, BytesRead: 123456, Term: "--",
		ActConn: 120, FeConn: 100, BeConn: 100, SrvConn: 100, Method: "GET", URI: "/api/v1/items?page=2&sort=name", Version: "HTTP/1.1",
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	e := sampleEntry()
	buf := make([]byte, 0, 512)
	for name, f := range map[string]func([]byte, *Entry) []byte{"TCP": AppendTCP, "HTTP": AppendHTTP, "Connect": AppendConnect} {
		if n := testing.AllocsPerRun(100, func() { buf = f(buf[:0], &e) }); n != 0 {
			t.Errorf("Append%s: %v allocations", name, n)
		}
	}
}

func BenchmarkAppendTCP(b *testing.B) {
	e := sampleEntry()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTCP(buf[:0], &e)
	}
}

func BenchmarkAppendHTTP(b *testing.B) {
	e := sampleEntry()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendHTTP(buf[:0], &e)
	}
}
