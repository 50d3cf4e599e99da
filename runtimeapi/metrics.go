package runtimeapi

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/config"
)

// Metrics serves the aggregated statistics in Prometheus' text exposition
// format, with the names of HAProxy's built-in exporter
// (haproxy_frontend_*, haproxy_backend_*, haproxy_server_* with "proxy"
// and "server" labels) plus haproxy_server_up and haproxy_backend_up as
// the older haproxy_exporter had them, and sluice_process_* for the
// children. Values follow the view's aggregation rules.
func Metrics(app Appliance) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := collect(r.Context(), app, time.Now())
		if v == nil {
			http.Error(w, "cannot collect statistics: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		var b bytes.Buffer
		writeMetrics(&b, v)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(b.Bytes())
	})
}

// promWriter writes metric families; each family's samples must follow
// its HELP and TYPE lines.
type promWriter struct {
	b *bytes.Buffer
}

type label struct{ name, value string }

func (pw promWriter) family(name, typ, help string) {
	pw.b.WriteString("# HELP " + name + " " + help + "\n")
	pw.b.WriteString("# TYPE " + name + " " + typ + "\n")
}

func (pw promWriter) sample(name string, v float64, labels ...label) {
	pw.b.WriteString(name)
	if len(labels) > 0 {
		pw.b.WriteByte('{')
		for i, l := range labels {
			if i > 0 {
				pw.b.WriteByte(',')
			}
			pw.b.WriteString(l.name + `="` + escapeLabel(l.value) + `"`)
		}
		pw.b.WriteByte('}')
	}
	pw.b.WriteByte(' ')
	pw.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	pw.b.WriteByte('\n')
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// proxyMetric and srvMetric are one family over frontends or backends,
// or over servers; value also says whether the object has the figure.
type proxyMetric struct {
	name, typ, help string
	value           func(pv *proxyView) (float64, bool)
}

type srvMetric struct {
	name, typ, help string
	value           func(pv *proxyView, sv *serverView) (float64, bool)
}

func always(n int64) (float64, bool) { return float64(n), true }

// serverStates are the values of haproxy_server_status's state label.
func serverStates() []string { return []string{"UP", "DOWN", "MAINT", "DRAIN", "NOLB", "no_check"} }

// serverState names a status text in serverStates: "UP 1/3" is UP (still
// up), "DOWN 1/2" is DOWN (still down).
func serverState(status string) string {
	switch {
	case status == "no check":
		return "no_check"
	case strings.HasPrefix(status, "UP"):
		return "UP"
	case strings.HasPrefix(status, "DOWN"):
		return "DOWN"
	}
	return status
}

// serverUp says whether a server still serves in the older exporter's
// sense: anything but DOWN and MAINT.
func serverUp(status string) bool {
	s := serverState(status)
	return s != "DOWN" && s != "MAINT"
}

func writeMetrics(b *bytes.Buffer, v *view) {
	pw := promWriter{b: b}
	writeProcessMetrics(pw, v)

	fes := []proxyMetric{
		{"haproxy_frontend_current_sessions", "gauge", "Number of current sessions.", func(pv *proxyView) (float64, bool) { return always(int64(pv.fe.Cur)) }},
		{"haproxy_frontend_max_sessions", "gauge", "Maximum observed number of sessions (sum of the per-process maxima).", func(pv *proxyView) (float64, bool) { return always(int64(pv.fe.Max)) }},
		{"haproxy_frontend_limit_sessions", "gauge", "Configured session limit (sum over processes, 0 for none).", func(pv *proxyView) (float64, bool) { return always(int64(pv.fe.Limit)) }},
		{"haproxy_frontend_sessions_total", "counter", "Total number of sessions.", func(pv *proxyView) (float64, bool) { return always(pv.fe.Total) }},
		{"haproxy_frontend_connections_total", "counter", "Total number of connections.", func(pv *proxyView) (float64, bool) { return always(pv.fe.Total) }},
		{"haproxy_frontend_bytes_in_total", "counter", "Current total of incoming bytes.", func(pv *proxyView) (float64, bool) { return always(pv.fe.BytesIn) }},
		{"haproxy_frontend_bytes_out_total", "counter", "Current total of outgoing bytes.", func(pv *proxyView) (float64, bool) { return always(pv.fe.BytesOut) }},
		{"haproxy_frontend_requests_denied_total", "counter", "Total number of denied requests.", func(pv *proxyView) (float64, bool) { return always(pv.fe.Denied) }},
		{"haproxy_frontend_request_errors_total", "counter", "Total number of request errors (bad PROXY headers, failed TLS handshakes).", func(pv *proxyView) (float64, bool) { return always(pv.fe.Errors) }},
		{"haproxy_frontend_http_requests_total", "counter", "Total number of HTTP requests received.", func(pv *proxyView) (float64, bool) {
			return float64(pv.fe.HTTPReqs), pv.cfg.Mode == config.ModeHTTP
		}},
	}
	for _, m := range fes {
		pw.family(m.name, m.typ, m.help)
		for _, pv := range v.proxies {
			if pv.fe == nil {
				continue
			}
			if x, ok := m.value(pv); ok {
				pw.sample(m.name, x, label{"proxy", pv.cfg.Name})
			}
		}
	}
	pw.family("haproxy_frontend_http_responses_total", "counter", "Total number of HTTP responses by status class.")
	for _, pv := range v.proxies {
		if pv.fe == nil || pv.cfg.Mode != config.ModeHTTP {
			continue
		}
		for _, c := range []struct {
			code string
			n    int64
		}{{"1xx", pv.fe.HTTP1xx}, {"2xx", pv.fe.HTTP2xx}, {"3xx", pv.fe.HTTP3xx}, {"4xx", pv.fe.HTTP4xx}, {"5xx", pv.fe.HTTP5xx}, {"other", pv.fe.HTTPOther}} {
			pw.sample("haproxy_frontend_http_responses_total", float64(c.n), label{"proxy", pv.cfg.Name}, label{"code", c.code})
		}
	}

	bes := []proxyMetric{
		{"haproxy_backend_up", "gauge", "Whether the backend can take connections (1) or not (0).", func(pv *proxyView) (float64, bool) { return float64(boolInt(pv.up)), true }},
		{"haproxy_backend_current_queue", "gauge", "Number of queued connections.", func(pv *proxyView) (float64, bool) { return always(int64(pv.be.QueueCur)) }},
		{"haproxy_backend_max_queue", "gauge", "Maximum observed number of queued connections (sum of the per-process maxima).", func(pv *proxyView) (float64, bool) { return always(int64(pv.be.QueueMax)) }},
		{"haproxy_backend_current_sessions", "gauge", "Number of current sessions.", func(pv *proxyView) (float64, bool) { return always(int64(pv.be.Cur)) }},
		{"haproxy_backend_max_sessions", "gauge", "Maximum observed number of sessions (sum of the per-process maxima).", func(pv *proxyView) (float64, bool) { return always(int64(pv.be.Max)) }},
		{"haproxy_backend_sessions_total", "counter", "Total number of sessions.", func(pv *proxyView) (float64, bool) { return always(pv.be.Total) }},
		{"haproxy_backend_last_session_seconds", "gauge", "Seconds since the last session was assigned to a server.", func(pv *proxyView) (float64, bool) {
			return float64(seconds(v.now, pv.be.LastSession)), !pv.be.LastSession.IsZero()
		}},
		{"haproxy_backend_bytes_in_total", "counter", "Current total of incoming bytes.", func(pv *proxyView) (float64, bool) { return always(pv.be.BytesIn) }},
		{"haproxy_backend_bytes_out_total", "counter", "Current total of outgoing bytes.", func(pv *proxyView) (float64, bool) { return always(pv.be.BytesOut) }},
		{"haproxy_backend_connection_errors_total", "counter", "Total number of connection errors, including connections that found no server.", func(pv *proxyView) (float64, bool) {
			return always(pv.be.ConnErrors + pv.be.Denied)
		}},
		{"haproxy_backend_retry_warnings_total", "counter", "Total number of retry warnings.", func(pv *proxyView) (float64, bool) { return always(pv.be.Retries) }},
		{"haproxy_backend_redispatch_warnings_total", "counter", "Total number of redispatch warnings.", func(pv *proxyView) (float64, bool) { return always(pv.be.Redispatch) }},
		{"haproxy_backend_weight", "gauge", "Total effective weight.", func(pv *proxyView) (float64, bool) { return always(int64(pv.weight)) }},
		{"haproxy_backend_active_servers", "gauge", "Number of usable active servers.", func(pv *proxyView) (float64, bool) { return always(int64(pv.act)) }},
		{"haproxy_backend_backup_servers", "gauge", "Number of usable backup servers.", func(pv *proxyView) (float64, bool) { return always(int64(pv.bck)) }},
	}
	pw.family("haproxy_backend_status", "gauge", "Current status of the backend (1 for the state it is in).")
	for _, pv := range v.proxies {
		if pv.be == nil {
			continue
		}
		for _, st := range []string{"UP", "DOWN"} {
			pw.sample("haproxy_backend_status", float64(boolInt(pv.backendStatus() == st)), label{"proxy", pv.cfg.Name}, label{"state", st})
		}
	}
	for _, m := range bes {
		pw.family(m.name, m.typ, m.help)
		for _, pv := range v.proxies {
			if pv.be == nil {
				continue
			}
			if x, ok := m.value(pv); ok {
				pw.sample(m.name, x, label{"proxy", pv.cfg.Name})
			}
		}
	}

	srvs := []srvMetric{
		{"haproxy_server_up", "gauge", "Whether the server serves (1: UP, DRAIN, NOLB or no check) or not (0: DOWN or MAINT).", func(_ *proxyView, sv *serverView) (float64, bool) {
			return float64(boolInt(serverUp(sv.status))), true
		}},
		{"haproxy_server_current_sessions", "gauge", "Number of current sessions.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(int64(sv.state.Counters.Cur)) }},
		{"haproxy_server_max_sessions", "gauge", "Maximum observed number of sessions (sum of the per-process maxima).", func(_ *proxyView, sv *serverView) (float64, bool) { return always(int64(sv.state.Counters.Max)) }},
		{"haproxy_server_limit_sessions", "gauge", "Configured session limit (sum over processes, 0 for none).", func(_ *proxyView, sv *serverView) (float64, bool) { return always(int64(sv.limit)) }},
		{"haproxy_server_sessions_total", "counter", "Total number of sessions.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.Total) }},
		{"haproxy_server_last_session_seconds", "gauge", "Seconds since the last session was assigned to the server.", func(_ *proxyView, sv *serverView) (float64, bool) {
			return float64(seconds(v.now, sv.state.Counters.LastSession)), !sv.state.Counters.LastSession.IsZero()
		}},
		{"haproxy_server_bytes_in_total", "counter", "Current total of incoming bytes.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.BytesIn) }},
		{"haproxy_server_bytes_out_total", "counter", "Current total of outgoing bytes.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.BytesOut) }},
		{"haproxy_server_connection_errors_total", "counter", "Total number of connection errors.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.ConnErrors) }},
		{"haproxy_server_retry_warnings_total", "counter", "Total number of retry warnings.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.Retries) }},
		{"haproxy_server_redispatch_warnings_total", "counter", "Total number of redispatch warnings.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(sv.state.Counters.Redispatch) }},
		{"haproxy_server_weight", "gauge", "Current weight of the server.", func(_ *proxyView, sv *serverView) (float64, bool) { return always(int64(sv.state.Weight)) }},
		{"haproxy_server_check_failures_total", "counter", "Total number of failed checks.", func(_ *proxyView, sv *serverView) (float64, bool) {
			return float64(sv.state.Counters.CheckFails), sv.cfg.Check
		}},
		{"haproxy_server_check_up_down_total", "counter", "Total number of UP to DOWN transitions.", func(_ *proxyView, sv *serverView) (float64, bool) {
			return float64(sv.state.Counters.CheckDowns), sv.cfg.Check
		}},
		{"haproxy_server_check_last_change_seconds", "gauge", "Seconds since the last state change.", func(_ *proxyView, sv *serverView) (float64, bool) {
			return float64(seconds(v.now, sv.state.LastChange)), !sv.state.LastChange.IsZero()
		}},
	}
	pw.family("haproxy_server_status", "gauge", "Current status of the server (1 for the state it is in).")
	for _, pv := range v.proxies {
		for _, sv := range pv.servers {
			cur := serverState(sv.status)
			for _, st := range serverStates() {
				pw.sample("haproxy_server_status", float64(boolInt(cur == st)), label{"proxy", pv.cfg.Name}, label{"server", sv.cfg.Name}, label{"state", st})
			}
		}
	}
	for _, m := range srvs {
		pw.family(m.name, m.typ, m.help)
		for _, pv := range v.proxies {
			for _, sv := range pv.servers {
				if x, ok := m.value(pv, sv); ok {
					pw.sample(m.name, x, label{"proxy", pv.cfg.Name}, label{"server", sv.cfg.Name})
				}
			}
		}
	}
}

func writeProcessMetrics(pw promWriter, v *view) {
	info := v.info
	var cur int64
	for _, pv := range v.proxies {
		if pv.fe != nil {
			cur += int64(pv.fe.Cur)
		}
	}
	pw.family("haproxy_process_build_info", "gauge", "Build info.")
	pw.sample("haproxy_process_build_info", 1, label{"version", info.Version})
	pw.family("haproxy_process_nbproc", "gauge", "Number of configured processes.")
	pw.sample("haproxy_process_nbproc", float64(v.cfg.Global.NbProc))
	pw.family("haproxy_process_start_time_seconds", "gauge", "Start time of the master in seconds since the epoch.")
	pw.sample("haproxy_process_start_time_seconds", float64(info.Started.Unix()))
	pw.family("haproxy_process_max_connections", "gauge", "Maximum number of concurrent connections of one process.")
	pw.sample("haproxy_process_max_connections", float64(info.MaxConn))
	pw.family("haproxy_process_max_fds", "gauge", "Maximum number of open file descriptors of one process.")
	pw.sample("haproxy_process_max_fds", float64(info.MaxSock))
	pw.family("haproxy_process_current_connections", "gauge", "Number of active sessions, summed over the processes.")
	pw.sample("haproxy_process_current_connections", float64(cur))
	pw.family("sluice_reloads_total", "counter", "Number of configuration reloads.")
	pw.sample("sluice_reloads_total", float64(info.Reloads))
	pw.family("sluice_process_up", "gauge", "Whether child process N is alive.")
	for _, p := range info.Processes {
		pw.sample("sluice_process_up", float64(boolInt(p.Alive)), label{"process", strconv.Itoa(p.Num)}, label{"role", p.Role})
	}
	pw.family("sluice_process_restarts_total", "counter", "Number of times child process N was restarted.")
	for _, p := range info.Processes {
		pw.sample("sluice_process_restarts_total", float64(p.Restarts), label{"process", strconv.Itoa(p.Num)})
	}
}
