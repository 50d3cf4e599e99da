package appliance

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/runtimeapi"
)

// statsPages serves the proxies with "stats enable" from the master, which
// alone sees every process: the page (and its ";csv" form) at the "stats
// uri", and Prometheus metrics at /metrics.
type statsPages struct {
	servers []*http.Server
}

// statsIdle bounds idle keep-alive connections to the stats page.
const statsIdle = 30 * time.Second

// serve replaces the running stats pages by those of cfg. The listening
// sockets stay open in the socket cache, so no client is refused while
// they change hands.
func (sp *statsPages) serve(m *Master, cfg *config.Config) {
	for _, srv := range sp.servers {
		srv.Close()
	}
	sp.servers = nil
	for _, p := range cfg.Proxies {
		if p.Stats == nil || p.Disabled {
			continue
		}
		h := statsHandler(p.Stats, m)
		for _, b := range p.Binds {
			f, ok := m.sockets.files[b.Addr.Key()]
			if !ok {
				continue
			}
			ln, err := net.FileListener(f) // a duplicate: closing it leaves the cached socket open
			if err != nil {
				m.log.Error("stats page", "bind", b.Addr.Text, "err", err)
				continue
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: statsIdle}
			sp.servers = append(sp.servers, srv)
			go srv.Serve(ln)
		}
	}
}

func (sp *statsPages) closeAll() {
	for _, srv := range sp.servers {
		srv.Close()
	}
	sp.servers = nil
}

// statsHandler routes a stats proxy's requests: the page under its URI as
// HAProxy matches it (a prefix of the request URI), the metrics at
// /metrics, and HAProxy's 503 page for anything else.
func statsHandler(st *config.StatsPage, app runtimeapi.Appliance) http.Handler {
	page := runtimeapi.StatsPage(app, st.Refresh)
	metrics := runtimeapi.Metrics(app)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.RequestURI, st.URI):
			page.ServeHTTP(w, r)
		case r.URL.Path == "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"))
		}
	})
}
