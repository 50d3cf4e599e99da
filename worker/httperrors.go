package worker

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// errorBodies are HAProxy 2.6's default error pages, byte for byte
// (including the stray '.' of its 501 page).
var errorBodies = map[int]string{
	200: "<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n",
	400: "<html><body><h1>400 Bad request</h1>\nYour browser sent an invalid request.\n</body></html>\n",
	401: "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
	403: "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n",
	404: "<html><body><h1>404 Not Found</h1>\nThe resource could not be found.\n</body></html>\n",
	405: "<html><body><h1>405 Method Not Allowed</h1>\nA request was made of a resource using a request method not supported by that resource\n</body></html>\n",
	407: "<html><body><h1>407 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n",
	408: "<html><body><h1>408 Request Time-out</h1>\nYour browser didn't send a complete request in time.\n</body></html>\n",
	410: "<html><body><h1>410 Gone</h1>\nThe resource is no longer available and will not be available again.\n</body></html>\n",
	413: "<html><body><h1>413 Payload Too Large</h1>\nThe request entity exceeds the maximum allowed.\n</body></html>\n",
	421: "<html><body><h1>421 Misdirected Request</h1>\nRequest sent to a non-authoritative server.\n</body></html>\n",
	422: "<html><body><h1>422 Unprocessable Content</h1>\nThe server cannot process the contained instructions.\n</body></html>\n",
	425: "<html><body><h1>425 Too Early</h1>\nYour browser sent early data.\n</body></html>\n",
	429: "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n",
	500: "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error occurred.\n</body></html>\n",
	501: "<html><body><h1>501 Not Implemented</h1>\n.The server does not support the functionality required to fulfill the request.\n</body></html>\n",
	502: "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n",
	503: "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n",
	504: "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n",
}

// errorPage is an answer sluice makes itself: a default page or an
// errorfile.
type errorPage struct {
	status int
	header http.Header
	body   []byte
}

// errorPages are one proxy's pages by status; nil uses the defaults.
type errorPages map[int]*errorPage

// parseErrorFiles reads the errorfile contents of a proxy (checked at
// load, see config.checkErrorFile).
func parseErrorFiles(files map[int]string) (errorPages, error) {
	if len(files) == 0 {
		return nil, nil
	}
	pages := make(errorPages, len(files))
	for code, raw := range files {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(raw)), nil)
		if err != nil {
			return nil, fmt.Errorf("errorfile %d: %w", code, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			// A partial page is never sent: the config check refuses it.
			return nil, fmt.Errorf("errorfile %d: reading the body: %w", code, err)
		}
		resp.Header.Del("Content-Length")
		resp.Header.Del("Transfer-Encoding")
		pages[code] = &errorPage{status: resp.StatusCode, header: resp.Header, body: body}
	}
	return pages, nil
}

// writePage answers with the first of pages that has code, or HAProxy's
// default page. Like HAProxy, 400 and 408 close the connection.
func writePage(w http.ResponseWriter, code int, pages ...errorPages) {
	h := w.Header()
	for _, set := range pages {
		if p := set[code]; p != nil {
			// Copies: handlers of concurrent responses may change their
			// headers in place, and the page's are shared.
			for k, v := range p.header {
				h[k] = slices.Clone(v)
			}
			h.Set("Content-Length", strconv.Itoa(len(p.body)))
			w.WriteHeader(p.status)
			w.Write(p.body)
			return
		}
	}
	body := errorBodies[code]
	h.Set("Content-Type", "text/html")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if code == http.StatusBadRequest || code == http.StatusRequestTimeout {
		h.Set("Connection", "close")
	}
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// writeRedirect answers an http-request redirect, as HAProxy does: no
// body.
func writeRedirect(w http.ResponseWriter, code int, location string) {
	h := w.Header()
	h.Set("Location", location)
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", "0")
	w.WriteHeader(code)
}
