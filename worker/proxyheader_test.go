package worker

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// readHeaderFrom runs readProxyHeader on a connection whose peer sends b
// and then closes.
func readHeaderFrom(b []byte) (net.Addr, error) {
	client, server := net.Pipe()
	go func() {
		client.Write(b)
		client.Close()
	}()
	defer server.Close()
	pc, err := readProxyHeader(server, time.Second)
	if err != nil {
		return nil, err
	}
	return pc.RemoteAddr(), nil
}

func TestReadProxyHeader(t *testing.T) {
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x07\x7f\x00\x00\x01\x30\x39\x01\xbb")
	for _, tc := range []struct {
		name, in, src string
		ok            bool
	}{
		{"v1", "PROXY TCP4 127.0.0.7 127.0.0.1 12345 443\r\nGET / HTTP/1.1\r\n", "127.0.0.7:12345", true},
		{"v1 ipv6", "PROXY TCP6 ::1 ::1 5 6\r\n", "[::1]:5", true},
		{"v2", string(v2), "127.0.0.7:12345", true},
		{"missing", "GET / HTTP/1.1\r\n\r\n", "", false},
		{"truncated v1", "PROXY TCP4 127.0.0.7", "", false},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00", "", false},
		{"bad port", "PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := readHeaderFrom([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && src.String() != tc.src {
				t.Fatalf("source %v, want %s", src, tc.src)
			}
		})
	}
}

// FuzzReadProxyHeader: any bytes from a client give a header or an error,
// never a panic or a hang.
func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 127.0.0.7 127.0.0.1 12345 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x07\x7f\x00\x00\x01\x30\x39\x01\xbb"))
	f.Add(bytes.Repeat([]byte("A"), 300))
	f.Fuzz(func(t *testing.T, b []byte) {
		readHeaderFrom(b)
	})
}
