package runtimeapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, h http.Handler, target string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// metricValue finds the sample of family name whose labels include want.
func metricValue(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("no family %s", name)
	}
	for _, m := range fam.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch fam.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("no %s sample with %v", name, want)
	return 0
}

func TestMetrics(t *testing.T) {
	app := fixture(t)
	res, body := get(t, Metrics(app), "/metrics")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"haproxy_frontend_current_sessions", map[string]string{"proxy": "fe_main"}, 5},
		{"haproxy_frontend_max_sessions", map[string]string{"proxy": "fe_main"}, 9},
		{"haproxy_frontend_sessions_total", map[string]string{"proxy": "fe_main"}, 150},
		{"haproxy_frontend_bytes_in_total", map[string]string{"proxy": "fe_main"}, 1500},
		{"haproxy_frontend_bytes_out_total", map[string]string{"proxy": "fe_main"}, 2700},
		{"haproxy_frontend_http_responses_total", map[string]string{"proxy": "web", "code": "2xx"}, 10},
		{"haproxy_backend_current_sessions", map[string]string{"proxy": "be_app"}, 8},
		{"haproxy_backend_connection_errors_total", map[string]string{"proxy": "be_app"}, 3},
		{"haproxy_backend_status", map[string]string{"proxy": "be_app", "state": "UP"}, 1},
		{"haproxy_backend_up", map[string]string{"proxy": "sock"}, 0},
		{"haproxy_backend_active_servers", map[string]string{"proxy": "be_app"}, 0},
		{"haproxy_backend_backup_servers", map[string]string{"proxy": "be_app"}, 1},
		{"haproxy_server_current_sessions", map[string]string{"proxy": "be_app", "server": "s2"}, 5},
		{"haproxy_server_bytes_in_total", map[string]string{"proxy": "be_app", "server": "s1"}, 900},
		{"haproxy_server_connection_errors_total", map[string]string{"proxy": "be_app", "server": "s1"}, 2},
		{"haproxy_server_up", map[string]string{"proxy": "be_app", "server": "s1"}, 0},
		{"haproxy_server_up", map[string]string{"proxy": "be_app", "server": "s2"}, 1},
		{"haproxy_server_status", map[string]string{"proxy": "be_app", "server": "s1", "state": "DOWN"}, 1},
		{"haproxy_server_status", map[string]string{"proxy": "be_app", "server": "s1", "state": "UP"}, 0},
		{"haproxy_server_status", map[string]string{"proxy": "be_app", "server": "s2", "state": "DRAIN"}, 1},
		{"haproxy_server_status", map[string]string{"proxy": "sock", "server": "u1", "state": "MAINT"}, 1},
		{"haproxy_server_status", map[string]string{"proxy": "web", "server": "w1", "state": "no_check"}, 1},
		{"haproxy_server_weight", map[string]string{"proxy": "be_app", "server": "s2"}, 50},
		{"haproxy_server_check_failures_total", map[string]string{"proxy": "be_app", "server": "s1"}, 7},
		{"haproxy_server_limit_sessions", map[string]string{"proxy": "be_app", "server": "s2"}, 40},
		{"haproxy_process_nbproc", nil, 2},
		{"haproxy_process_current_connections", nil, 6},
		{"sluice_process_up", map[string]string{"process": "2", "role": "worker"}, 1},
		{"sluice_process_restarts_total", map[string]string{"process": "2"}, 1},
	}
	for _, tt := range tests {
		if got := metricValue(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if fams["haproxy_frontend_bytes_in_total"].GetType() != dto.MetricType_COUNTER ||
		fams["haproxy_server_current_sessions"].GetType() != dto.MetricType_GAUGE {
		t.Error("wrong metric types")
	}

	app.snapErr, app.snaps = errBoom, nil
	if res, _ := get(t, Metrics(app), "/metrics"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without statistics: status %d", res.StatusCode)
	}
}

func TestMetricsEscaping(t *testing.T) {
	if got := escapeLabel("a\\b\"c\nd"); got != `a\\b\"c\nd` {
		t.Errorf("escapeLabel: %s", got)
	}
}

func TestStatsPage(t *testing.T) {
	app := fixture(t)
	res, body := get(t, StatsPage(app, 5*time.Second), "/stats")
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d, type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`<table class="proxy" id="be_app">`,
		`<tr class="server down"><td class="name">s1</td><td class="status down">DOWN</td>`,
		`<tr class="server drain"><td class="name">s2</td><td class="status drain">DRAIN</td>`,
		`<tr class="server maint"><td class="name">u1</td><td class="status maint">MAINT</td>`,
		`<tr class="server no-check"><td class="name">bk</td>`,
		`<tr class="frontend open"><td class="name">FRONTEND</td><td class="status open">OPEN</td>`,
		`<tr class="backend up"><td class="name">BACKEND</td><td class="status up">UP</td>`,
		`L4CON in 3ms`,
		`tr.drain td {`,
		`tr.maint td {`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="off"`) {
		t.Error("disabled proxy shown")
	}

	_, body = get(t, StatsPage(app, 0), "/stats")
	if strings.Contains(body, "http-equiv") {
		t.Error("refresh without a refresh interval")
	}

	for _, target := range []string{"/stats;csv", "/haproxy?stats;csv"} {
		res, body := get(t, StatsPage(app, 0), target)
		if ct := res.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: type %q", target, ct)
		}
		c, _ := testCLI(t)
		show := run(c, levelUser, "show stat")
		// Same rows as "show stat" (ages may differ: the page uses the clock).
		if !strings.HasPrefix(body, "# pxname,svname,qcur,") || strings.Count(body, "\n") != strings.Count(show, "\n")-1 {
			t.Errorf("%s: not the show stat CSV:\n%s", target, body)
		}
		parseStat(t, body)
	}

	app.snapErr, app.snaps = errBoom, nil
	if res, _ := get(t, StatsPage(app, 0), "/stats"); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("without statistics: status %d", res.StatusCode)
	}
}

func TestStatsPageEscapes(t *testing.T) {
	app := fixture(t)
	app.cfg.Proxies[1].Name = `<script>x</script>`
	app.snaps[0].Proxies[1].Name = app.cfg.Proxies[1].Name
	app.snaps[1].Proxies[1].Name = app.cfg.Proxies[1].Name
	_, body := get(t, StatsPage(app, 0), "/")
	if strings.Contains(body, "<script>") {
		t.Error("proxy name not escaped")
	}
}
