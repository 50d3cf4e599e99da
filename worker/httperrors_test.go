package worker

import (
	"net/http/httptest"
	"testing"
)

func TestParseErrorFilesShortBody(t *testing.T) {
	_, err := parseErrorFiles(map[int]string{503: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n<h1>down</h1>\n"})
	if err == nil {
		t.Fatal("a body short of its Content-Length was kept")
	}
}

func TestWritePageCopiesHeaders(t *testing.T) {
	pages, err := parseErrorFiles(map[int]string{503: "HTTP/1.1 503 Service Unavailable\r\nX-A: page\r\n\r\nlater\n"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	writePage(rec, 503, pages)
	rec.Header()["X-A"][0] = "changed" // as a later layer may, in place
	rec = httptest.NewRecorder()
	writePage(rec, 503, pages)
	if got := rec.Header().Get("X-A"); got != "page" {
		t.Fatalf("second answer's X-A = %q: the first answer changed the page", got)
	}
}
