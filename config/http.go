package config

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicelb/sluice/httprules"
)

// aclSet returns the ACLs of the proxy being read, which check its
// conditions as they come (an ACL must be declared before it is used,
// as in HAProxy).
func (d *proxyDraft) aclSet() *httprules.ACLs {
	if d.acls == nil {
		d.acls = httprules.NewACLs()
	}
	return d.acls
}

// acl reads "acl NAME fetch [flags] patterns".
func (p *parser) acl(s *stmt) error {
	if err := p.cur.aclSet().Add(s.args); err != nil {
		return err
	}
	p.cur.ACLs = append(p.cur.ACLs, RuleLine{Words: slices.Clone(s.args), Pos: s.pos})
	return nil
}

// httpRequest reads "http-request ACTION [args] [if|unless COND]".
func (p *parser) httpRequest(s *stmt) error {
	return p.httpRule(s, httprules.Request, &p.cur.HTTPRequest)
}

// httpResponse reads "http-response ACTION [args] [if|unless COND]".
func (p *parser) httpResponse(s *stmt) error {
	return p.httpRule(s, httprules.Response, &p.cur.HTTPResponse)
}

// httpRule checks one rule line and keeps its words. Actions are found by
// name: the cache actions belong to the cache sections (cache.go), the
// others to package httprules.
func (p *parser) httpRule(s *stmt, side httprules.Side, dst *[]RuleLine) error {
	if len(s.args) > 0 && (s.args[0] == "cache-use" || s.args[0] == "cache-store") {
		return p.cacheAction(s.name, s.args, s.pos)
	}
	if _, err := httprules.ParseRule(side, s.args, p.cur.aclSet()); err != nil {
		return err
	}
	*dst = append(*dst, RuleLine{Words: slices.Clone(s.args), Pos: s.pos})
	return nil
}

// redirect reads the proxy keyword "redirect location|prefix|scheme ...
// [if|unless COND]", the same as "http-request redirect" but run after
// the http-request rules.
func (p *parser) redirect(s *stmt) error {
	if _, err := httprules.ParseRedirect(s.args, p.cur.aclSet()); err != nil {
		return err
	}
	// Kept as an http-request rule's words, which the worker reads.
	words := append([]string{"redirect"}, s.args...)
	p.cur.Redirects = append(p.cur.Redirects, RuleLine{Words: words, Pos: s.pos})
	return nil
}

// useBackend reads "use_backend <name> [if|unless COND]".
func (p *parser) useBackend(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'use_backend' expects a backend name")
	}
	name, rest := s.args[0], s.args[1:]
	if strings.Contains(name, "%[") {
		return fmt.Errorf("'use_backend %s': dynamic backend names are not supported", name)
	}
	if len(rest) > 0 && rest[0] != "if" && rest[0] != "unless" {
		return fmt.Errorf("'use_backend %s': unexpected '%s' (only 'if' or 'unless' and a condition may follow)", name, rest[0])
	}
	if _, err := httprules.ParseCond(rest, p.cur.aclSet(), httprules.Request); err != nil {
		return fmt.Errorf("'use_backend %s': %w", name, err)
	}
	u := UseBackend{Backend: name, Pos: s.pos}
	if len(rest) > 0 {
		u.Cond = slices.Clone(rest)
	}
	p.cur.UseBackends = append(p.cur.UseBackends, u)
	return nil
}

// errorPageCodes are the statuses "errorfile" may replace, as in HAProxy 2.6.
var errorPageCodes = []int{200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}

// errorFile reads "errorfile CODE PATH": the file is a complete HTTP/1
// response, sent as it is. It is read now, by the master: children never
// read files.
func (p *parser) errorFile(s *stmt) error {
	if len(s.args) != 2 {
		return fmt.Errorf("'errorfile' expects a status code and a file")
	}
	code, err := strconv.Atoi(s.args[0])
	if err != nil || !slices.Contains(errorPageCodes, code) {
		return fmt.Errorf("'errorfile %s': status code not handled (supported: %s)", s.args[0], joinInts(errorPageCodes))
	}
	data, err := p.ld.files().ReadFile(s.args[1])
	if err != nil {
		return fmt.Errorf("'errorfile %d': %w", code, err)
	}
	if max := HeadRoom(p.global.BufSize); len(data) > max {
		return fmt.Errorf("'errorfile %d %s': %d bytes is more than a buffer holds (%d: tune.bufsize minus the room kept for rewrites)", code, s.args[1], len(data), max)
	}
	if err := checkErrorFile(data); err != nil {
		return fmt.Errorf("'errorfile %d %s': %w", code, s.args[1], err)
	}
	if p.cur.ErrorFiles == nil {
		p.cur.ErrorFiles = make(map[int]string)
	} else {
		p.cur.ErrorFiles = maps.Clone(p.cur.ErrorFiles) // defaults share the map until here
	}
	p.cur.ErrorFiles[code] = string(data)
	return nil
}

// HeadRoom is how much of a buffer of tune.bufsize bytes a request head
// (or an error page) may fill: HAProxy keeps tune.maxrewrite free for
// rewrites, by default half the buffer up to 1024 bytes.
func HeadRoom(bufSize int) int {
	return bufSize - min(1024, bufSize/2)
}

// checkErrorFile checks that an error file is an HTTP/1 response that
// net/http can read, whose body is as long as its Content-Length says:
// HAProxy refuses the file otherwise, rather than send a page cut short.
func checkErrorFile(data []byte) error {
	if !bytes.HasPrefix(data, []byte("HTTP/1.")) {
		return fmt.Errorf("not an HTTP response: the file must hold a complete response, starting with a status line such as 'HTTP/1.1 503 Service Unavailable'")
	}
	rd := bytes.NewReader(data)
	br := bufio.NewReader(rd)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("not an HTTP response: %w", err)
	}
	// What follows the head is the payload, unread so far (Close would
	// read it).
	payload := int64(br.Buffered() + rd.Len())
	resp.Body.Close()
	if resp.ContentLength >= 0 && payload != resp.ContentLength {
		return fmt.Errorf("payload size does not match the announced content-length (%d != %d)", payload, resp.ContentLength)
	}
	return nil
}

func joinInts(ns []int) string {
	var parts []string
	for _, n := range ns {
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ", ")
}

// httpReuse reads "http-reuse never|safe|aggressive|always".
func (p *parser) httpReuse(s *stmt) error {
	v, err := oneArg(s, "'never', 'safe', 'aggressive' or 'always'")
	if err != nil {
		return err
	}
	switch v {
	case "never", "safe", "aggressive", "always":
		p.cur.HTTPReuse, p.cur.httpReusePos = v, s.pos
		return nil
	}
	return fmt.Errorf("'http-reuse' expects 'never', 'safe', 'aggressive' or 'always', got '%s'", v)
}

// httpConnMode reads "option http-keep-alive", "option http-server-close"
// and "option httpclose", with their "no" forms.
func (p *parser) httpConnMode(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	mode := map[string]string{
		"option http-keep-alive":   "keep-alive",
		"option http-server-close": "server-close",
		"option httpclose":         "close",
	}[s.name]
	switch {
	case !s.neg:
		p.cur.HTTPConnMode, p.cur.httpConnModePos = mode, s.pos
	case p.cur.HTTPConnMode == mode:
		p.cur.HTTPConnMode = ""
	}
	return nil
}

// serverProto reads the server option "proto h2" (HTTP/2 to the server).
func (p *parser) serverProto(s *stmt) error {
	switch s.args[0] {
	case "h2":
		p.serverLine.Proto = "h2"
		return nil
	case "h1":
		p.serverLine.Proto = ""
		return nil
	}
	return fmt.Errorf("'proto %s' is not supported (supported: h2, h1)", s.args[0])
}

// tuneMaxHdr reads tune.http.maxhdr.
func (p *parser) tuneMaxHdr(s *stmt) error {
	n, err := intArg(s, 1, 32767)
	if err != nil {
		return err
	}
	p.global.MaxHdr = n
	return p.once(s, s.name)
}
