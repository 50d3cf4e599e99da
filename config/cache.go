package config

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Cache is a cache section: a small object cache for http proxies
// ("http-request cache-use", "http-response cache-store"). Each process
// has its own, of this size.
type Cache struct {
	Name string `json:"name"`
	// TotalMaxSize is "total-max-size", in bytes (written in megabytes).
	TotalMaxSize int64 `json:"total_max_size"`
	// MaxObjectSize is "max-object-size" in bytes: bigger responses are
	// not stored. Default: a 256th of TotalMaxSize, as HAProxy.
	MaxObjectSize int64 `json:"max_object_size"`
	// MaxAge is "max-age": the longest an object is served from the
	// cache, whatever its own headers allow (default 60s).
	MaxAge time.Duration `json:"max_age"`
	// ProcessVary is "process-vary on": responses with
	// "Vary: Accept-Encoding" are stored, one variant per request
	// Accept-Encoding. Off, any Vary keeps a response out, as HAProxy.
	ProcessVary bool `json:"process_vary,omitempty"`
	// MaxSecondaryEntries bounds the variants of one object (default 10).
	MaxSecondaryEntries int `json:"max_secondary_entries"`
	Pos                 Pos `json:"pos"`
}

// startCache handles "cache NAME".
func (p *parser) startCache(pos Pos, args []string) {
	// MaxObjectSize -1: not written; checkCaches gives it its default.
	p.curCache = &Cache{MaxAge: 60 * time.Second, MaxSecondaryEntries: 10, MaxObjectSize: -1, Pos: pos}
	name, ok := p.namedSection(pos, "cache", args)
	p.curCache.Name = name
	if !ok {
		return
	}
	for _, c := range p.caches {
		if c.Name == name {
			p.errorf(pos, "cache section '%s' is already defined at %s", name, c.Pos)
			return
		}
	}
	p.caches = append(p.caches, p.curCache)
}

// cacheTotalMaxSize reads "total-max-size MEGABYTES" (1 to 4095, as
// HAProxy).
func (p *parser) cacheTotalMaxSize(s *stmt) error {
	n, err := intArg(s, 1, 4095)
	if err != nil {
		return err
	}
	p.curCache.TotalMaxSize = int64(n) << 20
	return nil
}

func (p *parser) cacheMaxObjectSize(s *stmt) error {
	n, err := intArg(s, 1, math.MaxInt32)
	if err != nil {
		return err
	}
	p.curCache.MaxObjectSize = int64(n)
	return nil
}

func (p *parser) cacheMaxAge(s *stmt) error {
	n, err := intArg(s, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	p.curCache.MaxAge = time.Duration(n) * time.Second
	return nil
}

func (p *parser) cacheProcessVary(s *stmt) error {
	v, err := oneArg(s, "'on' or 'off'")
	if err != nil {
		return err
	}
	switch v {
	case "on":
		p.curCache.ProcessVary = true
	case "off":
		p.curCache.ProcessVary = false
	default:
		return fmt.Errorf("'process-vary' expects 'on' or 'off' (got '%s')", v)
	}
	return nil
}

func (p *parser) cacheMaxSecondary(s *stmt) error {
	n, err := intArg(s, 1, 4096)
	p.curCache.MaxSecondaryEntries = n
	return err
}

// cacheAction reads the cache actions of http rules: "http-request
// cache-use NAME" and "http-response cache-store NAME". section is
// "http-request" or "http-response"; args start with the action.
func (p *parser) cacheAction(section string, args []string, pos Pos) error {
	want := map[string]string{"http-request": "cache-use", "http-response": "cache-store"}[section]
	if len(args) == 0 {
		return fmt.Errorf("'%s' expects an action (only '%s NAME' is supported)", section, want)
	}
	action := args[0]
	if action != want {
		return fmt.Errorf("'%s %s' is not supported (only '%s %s NAME' is)", section, action, section, want)
	}
	if len(args) < 2 {
		return fmt.Errorf("'%s %s' expects the name of a cache section", section, action)
	}
	name := args[1]
	if len(args) > 2 {
		if args[2] == "if" || args[2] == "unless" {
			return fmt.Errorf("'%s %s %s': conditions ('%s ...') are not supported yet", section, action, name, args[2])
		}
		return fmt.Errorf("'%s %s %s': unexpected '%s'", section, action, name, strings.Join(args[2:], " "))
	}
	d := p.cur // never a defaults section: the keyword table refuses it there
	if section == "http-request" {
		if d.CacheUse != "" {
			return fmt.Errorf("%s already uses cache '%s' (at %s): one 'http-request cache-use' per proxy", d.label(), d.CacheUse, d.cacheUsePos)
		}
		d.CacheUse, d.cacheUsePos = name, pos
	} else {
		if d.CacheStore != "" {
			return fmt.Errorf("%s already stores into cache '%s' (at %s): one 'http-response cache-store' per proxy", d.label(), d.CacheStore, d.cacheStorePos)
		}
		d.CacheStore, d.cacheStorePos = name, pos
	}
	return nil
}

// checkCaches completes the cache sections and checks the proxies' cache
// rules against them.
func (p *parser) checkCaches() {
	names := make([]string, 0, len(p.caches))
	for _, c := range p.caches {
		names = append(names, c.Name)
		if c.TotalMaxSize == 0 {
			p.errorf(c.Pos, "cache '%s' needs 'total-max-size' (in megabytes)", c.Name)
			continue
		}
		if c.MaxObjectSize < 0 {
			c.MaxObjectSize = c.TotalMaxSize / 256
		}
		if c.MaxObjectSize > c.TotalMaxSize/2 {
			p.errorf(c.Pos, "cache '%s': 'max-object-size' (%d bytes) may not be more than half of 'total-max-size' (%d bytes)", c.Name, c.MaxObjectSize, c.TotalMaxSize)
		}
	}
	for _, d := range p.proxies {
		for _, r := range []struct {
			rule, name string
			pos        Pos
		}{
			{"http-request cache-use", d.CacheUse, d.cacheUsePos},
			{"http-response cache-store", d.CacheStore, d.cacheStorePos},
		} {
			if r.name == "" {
				continue
			}
			if p.cacheNamed(r.name) == nil {
				p.errorf(r.pos, "%s: '%s' names no cache section '%s'%s", d.label(), r.rule, r.name, didYouMean(r.name, names))
			}
		}
	}
}

func (p *parser) cacheNamed(name string) *Cache {
	for _, c := range p.caches {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Cache returns the cache section with that name, or nil.
func (c *Config) Cache(name string) *Cache {
	for _, x := range c.Caches {
		if x.Name == name {
			return x
		}
	}
	return nil
}
