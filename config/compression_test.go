package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCompressionConfig(t *testing.T) {
	cfg := mustLoad(t, `defaults
   mode http
   compression algo gzip
   compression type text/html
listen a
   bind :8000
   compression algo br
   compression algo zstd gzip
   compression offload
   compression minsize-res 1k
   compression direction response
   server s 127.0.0.1:8080
listen b
   bind :8001
   compression type-res text/plain
   server s 127.0.0.1:8080
listen c
   bind :8002
   server s 127.0.0.1:8080
`)
	tests := []struct {
		proxy string
		want  Compression
	}{
		{"a", Compression{Algos: []string{"br", "zstd", "gzip"}, Types: []string{"text/html"}, Offload: true, MinSizeRes: 1024}},
		{"b", Compression{Algos: []string{"gzip"}, Types: []string{"text/plain"}}},
		{"c", Compression{Algos: []string{"gzip"}, Types: []string{"text/html"}}},
	}
	for _, tt := range tests {
		got := cfg.Proxy(tt.proxy).Compression
		if got == nil {
			t.Fatalf("%s: no compression", tt.proxy)
		}
		g := *got
		g.Pos = Pos{}
		if !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%s: %+v, want %+v", tt.proxy, g, tt.want)
		}
	}
}

func TestCompressionErrors(t *testing.T) {
	runCases(t, []loadCase{
		{
			name: "unknown algo",
			cfg:  "listen a\n   mode http\n   bind :8000\n   compression algo gzp\n   server s 127.0.0.1:8080\n",
			errs: []string{"t.cfg:4: 'compression algo': unknown algorithm 'gzp' (expected identity, gzip, deflate, raw-deflate, zstd, br) (did you mean 'gzip'?)"},
		},
		{
			name:  "no algo",
			cfg:   "listen a\n   mode http\n   bind :8000\n   compression type text/html\n   server s 127.0.0.1:8080\n",
			warns: []string{"t.cfg:4: warning: 'compression' ignored for listen 'a' as it has no 'compression algo'"},
		},
		{
			name: "request direction",
			cfg:  "listen a\n   mode http\n   bind :8000\n   compression algo gzip\n   compression direction both\n   server s 127.0.0.1:8080\n",
			errs: []string{"t.cfg:5: 'compression direction both' is not supported: sluice compresses responses only"},
		},
		{
			name: "request compression",
			cfg:  "listen a\n   mode http\n   bind :8000\n   compression algo-req gzip\n   server s 127.0.0.1:8080\n",
			errs: []string{"t.cfg:4: 'compression algo-req' is not supported"},
		},
		{
			name:  "tcp mode",
			cfg:   "listen a\n   bind :8000\n   compression algo gzip\n   server s 127.0.0.1:8080\n",
			warns: []string{"t.cfg:3: warning: 'compression' ignored for listen 'a' as it requires HTTP mode"},
		},
		{
			name: "bad size",
			cfg:  "listen a\n   mode http\n   bind :8000\n   compression algo gzip\n   compression minsize-res ten\n   server s 127.0.0.1:8080\n",
			errs: []string{"t.cfg:5: 'compression minsize-res': 'ten' is not a size (a number of bytes, optionally followed by k, m or g)"},
		},
	})
}

func TestCacheConfig(t *testing.T) {
	cfg := mustLoad(t, `cache small
   total-max-size 4
   max-age 240
cache big
   total-max-size 100
   max-object-size 1000000
   process-vary on
listen a
   mode http
   bind :8000
   http-request cache-use small
   http-response cache-store small
   server s 127.0.0.1:8080
`)
	want := []*Cache{
		{Name: "small", TotalMaxSize: 4 << 20, MaxObjectSize: 4 << 20 / 256, MaxAge: 240 * time.Second, MaxSecondaryEntries: 10},
		{Name: "big", TotalMaxSize: 100 << 20, MaxObjectSize: 1000000, MaxAge: 60 * time.Second, ProcessVary: true, MaxSecondaryEntries: 10},
	}
	for i, c := range cfg.Caches {
		c.Pos = Pos{}
		if !reflect.DeepEqual(c, want[i]) {
			t.Errorf("cache %d: %+v, want %+v", i, c, want[i])
		}
	}
	if p := cfg.Proxy("a"); p.CacheUse != "small" || p.CacheStore != "small" {
		t.Errorf("cache rules: use %q store %q", p.CacheUse, p.CacheStore)
	}
}

func TestCacheErrors(t *testing.T) {
	proxy := "listen a\n   mode http\n   bind :8000\n   server s 127.0.0.1:8080\n"
	runCases(t, []loadCase{
		{
			name: "no size",
			cfg:  "cache c\n   max-age 10\n",
			errs: []string{"t.cfg:1: cache 'c' needs 'total-max-size' (in megabytes)"},
		},
		{
			name: "object too big",
			cfg:  "cache c\n   total-max-size 1\n   max-object-size 600000\n",
			errs: []string{"t.cfg:1: cache 'c': 'max-object-size' (600000 bytes) may not be more than half of 'total-max-size' (1048576 bytes)"},
		},
		{
			name: "duplicate",
			cfg:  "cache c\n   total-max-size 1\ncache c\n   total-max-size 1\n",
			errs: []string{"t.cfg:3: cache section 'c' is already defined at t.cfg:1"},
		},
		{
			name: "unknown cache",
			cfg:  "cache small\n   total-max-size 1\n" + proxy + "   http-request cache-use smal\n",
			errs: []string{"t.cfg:7: listen 'a': 'http-request cache-use' names no cache section 'smal' (did you mean 'small'?)"},
		},
		{
			name: "condition",
			cfg:  "cache c\n   total-max-size 1\n" + proxy + "   http-response cache-store c if TRUE\n",
			errs: []string{"t.cfg:7: 'http-response cache-store c': conditions ('if ...') are not supported yet"},
		},
		{
			name:  "tcp mode",
			cfg:   "cache c\n   total-max-size 1\nlisten a\n   bind :8000\n   http-request cache-use c\n   server s 127.0.0.1:8080\n",
			warns: []string{"t.cfg:5: warning: cache rules ignored for listen 'a' as they require HTTP mode"},
		},
		{
			name: "cache keyword in proxy",
			cfg:  proxy + "   max-age 10\n",
			errs: []string{"t.cfg:5: 'max-age' not allowed in 'listen a' section (it belongs in 'cache' sections)"},
		},
		{
			name: "in defaults",
			cfg:  "defaults\n   mode http\n   http-request cache-use c\n",
			errs: []string{"t.cfg:3: 'http-request' not allowed in 'defaults' section"},
		},
	})
}

// TestCompressionPoolExample loads docs/examples/compression-pool.cfg with
// the test certificate: the configuration decides which processes do TLS
// and which compress.
func TestCompressionPoolExample(t *testing.T) {
	text, err := os.ReadFile("../docs/examples/compression-pool.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg, warns, err := load(strings.ReplaceAll(string(text), "/etc/sluice/site.pem", "testdata/site.pem"))
	if err != nil || len(warns) > 0 {
		t.Fatalf("load: %v, warnings %v", err, warns)
	}
	tls, comp := cfg.Proxy("tls"), cfg.Proxy("compress")
	if !reflect.DeepEqual(tls.Processes, []int{2, 3, 4, 5}) || tls.Compression != nil {
		t.Errorf("tls: processes %v, compression %+v", tls.Processes, tls.Compression)
	}
	if !reflect.DeepEqual(comp.Processes, []int{6, 7}) || comp.Compression == nil || comp.CacheUse != "static" {
		t.Errorf("compress: processes %v, compression %+v, cache %q", comp.Processes, comp.Compression, comp.CacheUse)
	}
	for _, s := range tls.Servers {
		if s.SendProxy != 2 || s.LocalProcess < 6 {
			t.Errorf("server %s: send-proxy %d, local process %d", s.Name, s.SendProxy, s.LocalProcess)
		}
	}
}
