package config

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sluicelb/sluice/compression"
)

// Compression is a proxy's "compression" lines.
type Compression struct {
	// Algos are the algorithms offered, in order: HAProxy's identity,
	// gzip, deflate and raw-deflate, and sluice's zstd and br.
	Algos []string `json:"algos"`
	// Types are the media types compressed (prefixes of Content-Type);
	// empty = every type.
	Types []string `json:"types,omitempty"`
	// Offload is "compression offload": Accept-Encoding is removed from
	// requests, so that servers leave the compressing to the proxy.
	Offload bool `json:"offload,omitempty"`
	// MinSizeRes is "compression minsize-res": responses whose
	// Content-Length is smaller are not compressed.
	MinSizeRes int64 `json:"minsize_res,omitempty"`
	Pos        Pos   `json:"pos"`
}

// compressionDraft remembers which lists of a proxy's compression were
// written in the section itself: its first line of a kind replaces what a
// defaults section gave, the next ones add to it.
type compressionDraft struct {
	algosHere, typesHere bool
}

// compression returns the proxy's compression settings, copied from the
// defaults section's on first use so that changing them never changes the
// defaults'.
func (p *parser) compression(pos Pos) *Compression {
	d := p.cur
	if d.compOwn {
		return d.Compression
	}
	c := &Compression{Pos: pos}
	if d.Compression != nil {
		c.Algos = slices.Clone(d.Compression.Algos)
		c.Types = slices.Clone(d.Compression.Types)
		c.Offload = d.Compression.Offload
		c.MinSizeRes = d.Compression.MinSizeRes
	}
	d.Compression, d.compOwn, d.comp = c, true, compressionDraft{}
	return c
}

// compressionAlgo reads "compression algo|algo-res NAME...".
func (p *parser) compressionAlgo(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'%s' expects at least one algorithm (%s)", s.name, strings.Join(compression.Algorithms, ", "))
	}
	for _, a := range s.args {
		if !slices.Contains(compression.Algorithms, a) {
			return fmt.Errorf("'%s': unknown algorithm '%s' (expected %s)%s", s.name, a, strings.Join(compression.Algorithms, ", "), didYouMean(a, compression.Algorithms))
		}
	}
	c := p.compression(s.pos)
	if !p.cur.comp.algosHere {
		c.Algos, p.cur.comp.algosHere = nil, true
	}
	for _, a := range s.args {
		if !slices.Contains(c.Algos, a) {
			c.Algos = append(c.Algos, a)
		}
	}
	return nil
}

// compressionType reads "compression type|type-res MIME...".
func (p *parser) compressionType(s *stmt) error {
	if len(s.args) == 0 {
		return fmt.Errorf("'%s' expects at least one media type (e.g. text/html)", s.name)
	}
	c := p.compression(s.pos)
	if !p.cur.comp.typesHere {
		c.Types, p.cur.comp.typesHere = nil, true
	}
	c.Types = append(c.Types, s.args...)
	return nil
}

func (p *parser) compressionOffload(s *stmt) error {
	if err := noArg(s); err != nil {
		return err
	}
	p.compression(s.pos).Offload = true
	return nil
}

// compressionMinSize reads "compression minsize-res SIZE" (a number of
// bytes, with an optional k, m or g suffix as HAProxy's sizes).
func (p *parser) compressionMinSize(s *stmt) error {
	v, err := oneArg(s, "a size in bytes")
	if err != nil {
		return err
	}
	n, err := parseSize(v)
	if err != nil {
		return fmt.Errorf("'%s': %v", s.name, err)
	}
	p.compression(s.pos).MinSizeRes = n
	return nil
}

// compressionDirection reads "compression direction": sluice compresses
// responses only.
func (p *parser) compressionDirection(s *stmt) error {
	v, err := oneArg(s, "'response'")
	if err != nil {
		return err
	}
	if v != "response" {
		return fmt.Errorf("'compression direction %s' is not supported: sluice compresses responses only", v)
	}
	return nil
}

// parseSize reads a size: digits with an optional k, m or g suffix
// (multiples of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, num = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, num = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, num = 1<<30, s[:n-1]
		}
	}
	v, err := parseInt(num, 0, math.MaxInt32)
	if err != nil {
		return 0, fmt.Errorf("'%s' is not a size (a number of bytes, optionally followed by k, m or g)", s)
	}
	return int64(v) * mult, nil
}

// checkCompression drops, with a warning, the compression of proxies that
// have no algorithm: HAProxy accepts it and compresses nothing. tcp mode
// is checked by checkHTTPOnly.
func (p *parser) checkCompression() {
	for _, d := range p.proxies {
		c := d.Compression
		if c == nil {
			continue
		}
		if len(c.Algos) == 0 {
			// HAProxy accepts it and compresses nothing.
			p.warnf(c.Pos, "'compression' ignored for %s as it has no 'compression algo'", d.label())
			d.Compression = nil
		}
	}
}
