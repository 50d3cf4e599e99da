package dns

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// ParseResolvConf reads the "nameserver" lines of a resolv.conf file, for
// HAProxy's "parse-resolv-conf". Each nameserver is named after its address
// and asked on port 53 over UDP. Other keywords and comments ('#' or ';')
// are ignored.
//
// As HAProxy, which only warns about a bad line, it returns the nameservers
// it could parse even when some lines were wrong; the error then lists those
// lines, so the caller can warn. If the file cannot be read, the nameservers
// are nil.
func ParseResolvConf(path string) ([]Nameserver, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parse-resolv-conf: %w", err)
	}
	defer f.Close()

	var (
		out  []Nameserver
		errs []error
	)
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexAny(text, "#;"); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 || fields[0] != "nameserver" {
			continue
		}
		if len(fields) < 2 {
			errs = append(errs, fmt.Errorf("%s:%d: nameserver without an address", path, line))
			continue
		}
		addr, err := netip.ParseAddr(fields[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: nameserver address: %w", path, line, err))
			continue
		}
		out = append(out, Nameserver{Name: fields[1], Addr: netip.AddrPortFrom(addr.Unmap(), 53)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse-resolv-conf: reading %s: %w", path, err)
	}
	return out, errors.Join(errs...)
}
