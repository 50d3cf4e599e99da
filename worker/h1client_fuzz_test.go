package worker

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// FuzzH1Client feeds whatever a server may answer to the lean client: it
// must not panic or hang, must agree with net/http on the final status and
// body, and must pool a connection only after a complete body on a
// connection that stays open with nothing left unread.
func FuzzH1Client(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			if err := skipHead(bufio.NewReader(server)); err != nil {
				return
			}
			server.Write(answer)
		}()
		c := newH1Client(func(context.Context, string, string) (net.Conn, error) { return client, nil }, time.Second)
		r, _ := http.NewRequest("GET", "http://s/", nil)
		resp, err := c.RoundTrip(r)
		if err != nil {
			return
		}
		body, bodyErr := io.ReadAll(resp.Body)
		resp.Body.Close()

		want, werr := finalResponse(answer, r)
		if werr != nil {
			t.Fatalf("lean client answered %d where net/http fails: %v", resp.StatusCode, werr)
		}
		wantBody, wantErr := io.ReadAll(want.Body)
		if want.StatusCode != resp.StatusCode || !bytes.Equal(body, wantBody) || (bodyErr == nil) != (wantErr == nil) {
			t.Fatalf("got %d %q (%v), net/http reads %d %q (%v)", resp.StatusCode, body, bodyErr, want.StatusCode, wantBody, wantErr)
		}
		if len(c.idle) > 0 && (bodyErr != nil || want.Close) {
			t.Fatal("pooled a connection that cannot carry another request")
		}
	})
}

// finalResponse is what http.ReadResponse makes of answer, after its 1xx
// responses.
func finalResponse(answer []byte, r *http.Request) (*http.Response, error) {
	br := bufio.NewReader(bytes.NewReader(answer))
	for {
		resp, err := http.ReadResponse(br, r)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode > 199 {
			return resp, err
		}
	}
}
