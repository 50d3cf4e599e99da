package runtimeapi

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatsPage serves HAProxy's statistics page: a table per proxy with its
// frontend, servers and backend, coloured by state, summed over the
// processes like "show stat". A URL ending in ";csv" (in the path or the
// query, as in "/stats;csv" or "/haproxy?stats;csv") gets the "show stat"
// CSV instead. With refresh > 0 the page reloads itself that often.
func StatsPage(app Appliance, refresh time.Duration) http.Handler {
	tmpl := template.Must(template.New("stats").Parse(statsTemplate))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v, err := collect(r.Context(), app, time.Now())
		if v == nil {
			http.Error(w, "cannot collect statistics: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, ";csv") || strings.HasSuffix(r.URL.RawQuery, ";csv") {
			var b strings.Builder
			writeCSV(&b, v.rows(allRows()))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte(b.String()))
			return
		}
		var b bytes.Buffer
		data := pageData(v, refresh)
		if err != nil {
			data.Warning = err.Error()
		}
		if err := tmpl.Execute(&b, data); err != nil {
			http.Error(w, "render the statistics page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b.Bytes())
	})
}

// page is what the template shows.
type page struct {
	Refresh   int // seconds, 0 = none
	Version   string
	PID       int
	Uptime    string
	NbProc    int
	Processes []pageProcess
	Proxies   []pageProxy
	Warning   string
}

type pageProcess struct {
	Num      int
	PID      int
	Role     string
	Alive    bool
	Restarts int
}

type pageProxy struct {
	Name string
	Mode string
	Rows []pageRow
}

// pageRow is one line of a proxy table; empty cells stay blank.
type pageRow struct {
	Kind    string // "frontend", "server", "backend"
	Name    string
	Class   string // the row's state class: up, down, drain, maint, ...
	Status  string
	QCur    string
	QMax    string
	Cur     string
	Max     string
	Limit   string
	Total   string
	LastSes string
	BytesIn string
	BytesOu string
	Denied  string
	ErrReq  string
	ErrConn string
	Retr    string
	Redis   string
	LastChg string
	Check   string
	Weight  string
	Act     string
	Bck     string
	ChkFail string
	ChkDown string
}

func pageData(v *view, refresh time.Duration) page {
	p := page{
		Refresh: int((refresh + time.Second - 1) / time.Second),
		Version: v.info.Version,
		PID:     v.info.PID,
		Uptime:  procUptime(v.now, v.info.Started),
		NbProc:  v.cfg.Global.NbProc,
	}
	for _, pi := range v.info.Processes {
		p.Processes = append(p.Processes, pageProcess{Num: pi.Num, PID: pi.PID, Role: pi.Role, Alive: pi.Alive, Restarts: pi.Restarts})
	}
	for _, r := range v.rows(allRows()) {
		f := r.fields
		if len(p.Proxies) == 0 || p.Proxies[len(p.Proxies)-1].Name != f[colPxname] {
			p.Proxies = append(p.Proxies, pageProxy{Name: f[colPxname], Mode: f[colMode]})
		}
		row := pageRow{
			Name: f[colSvname], Status: f[colStatus],
			QCur: f[colQcur], QMax: f[colQmax], Cur: f[colScur], Max: f[colSmax], Limit: f[colSlim],
			Total: f[colStot], BytesIn: f[colBin], BytesOu: f[colBout], Denied: f[colDreq],
			ErrReq: f[colEreq], ErrConn: f[colEcon], Retr: f[colWretr], Redis: f[colWredis],
			Weight: f[colWeight], Act: f[colAct], Bck: f[colBck], ChkFail: f[colChkfail], ChkDown: f[colChkdown],
		}
		if s := f[colLastsess]; s != "" && s != "-1" {
			row.LastSes = humanSeconds(s)
		}
		if s := f[colLastchg]; s != "" {
			row.LastChg = humanSeconds(s)
		}
		if s := f[colCheckStatus]; s != "" {
			row.Check = s
			if d := f[colCheckDuration]; d != "" {
				row.Check += " in " + d + "ms"
			}
		}
		switch r.kind {
		case typeFrontend:
			row.Kind, row.Class = "frontend", frontendClass(row.Status)
		case typeBackend:
			row.Kind, row.Class = "backend", strings.ToLower(row.Status)
		default:
			row.Kind, row.Class = "server", statusClass(row.Status)
		}
		last := &p.Proxies[len(p.Proxies)-1]
		last.Rows = append(last.Rows, row)
	}
	return p
}

func humanSeconds(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return humanDuration(time.Duration(n) * time.Second)
}

// statusClass is a server row's CSS class: the state it is in, with the
// transitions HAProxy colours apart.
func statusClass(status string) string {
	switch {
	case status == "UP":
		return "up"
	case strings.HasPrefix(status, "UP "):
		return "going-down"
	case status == "DOWN":
		return "down"
	case strings.HasPrefix(status, "DOWN "):
		return "going-up"
	case status == "MAINT":
		return "maint"
	case status == "DRAIN":
		return "drain"
	case status == "NOLB":
		return "nolb"
	case status == "no check":
		return "no-check"
	}
	return "unknown"
}

func frontendClass(status string) string {
	switch status {
	case "OPEN":
		return "open"
	case "FULL":
		return "full"
	}
	return "stop"
}

const statsTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{- if .Refresh}}
<meta http-equiv="refresh" content="{{.Refresh}}">
{{- end}}
<title>Statistics Report for Sluice</title>
<style>
body { font-family: arial, helvetica, sans-serif; font-size: 12px; margin: 1em; }
h1 { font-size: 16px; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #999; padding: 1px 4px; text-align: right; white-space: nowrap; }
td.name, td.status, th.name { text-align: left; }
caption { text-align: left; font-weight: bold; font-size: 14px; padding: 2px 0; }
tr.titre th { background: #20d0d0; }
tr.frontend td, tr.backend td { font-weight: bold; }
tr.up td, tr.open td { background: #c0ffc0; }
tr.no-check td { background: #e0ffe0; }
tr.going-down td { background: #ffffa0; }
tr.going-up td { background: #ffd020; }
tr.down td, tr.stop td, tr.full td { background: #ff9090; }
tr.nolb td { background: #ffa040; }
tr.drain td { background: #80a0ff; }
tr.maint td { background: #c0c0c0; color: #404040; }
tr.unknown td { background: #ffffff; }
.warning { color: #b00000; font-weight: bold; }
</style>
</head>
<body>
<h1>Sluice statistics</h1>
<p>Version {{.Version}}, master pid {{.PID}}, uptime {{.Uptime}}, {{.NbProc}} processes.
{{- range .Processes}} Process {{.Num}}: pid {{.PID}}, {{.Role}}, {{if .Alive}}alive{{else}}<span class="warning">dead</span>{{end}}{{if .Restarts}}, {{.Restarts}} restarts{{end}}.{{end}}</p>
{{- if .Warning}}
<p class="warning">{{.Warning}}</p>
{{- end}}
{{- range .Proxies}}
<table class="proxy" id="{{.Name}}">
<caption>{{.Name}} ({{.Mode}})</caption>
<tr class="titre"><th class="name" rowspan="2"></th><th rowspan="2">Status</th><th colspan="2">Queue</th><th colspan="5">Sessions</th><th colspan="2">Bytes</th><th>Denied</th><th colspan="2">Errors</th><th colspan="2">Warnings</th><th colspan="7">Server</th></tr>
<tr class="titre"><th>Cur</th><th>Max</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Req</th><th>Conn</th><th>Retr</th><th>Redis</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>LastChg</th></tr>
{{- range .Rows}}
<tr class="{{.Kind}} {{.Class}}"><td class="name">{{.Name}}</td><td class="status {{.Class}}">{{.Status}}</td><td>{{.QCur}}</td><td>{{.QMax}}</td><td>{{.Cur}}</td><td>{{.Max}}</td><td>{{.Limit}}</td><td>{{.Total}}</td><td>{{.LastSes}}</td><td>{{.BytesIn}}</td><td>{{.BytesOu}}</td><td>{{.Denied}}</td><td>{{.ErrReq}}</td><td>{{.ErrConn}}</td><td>{{.Retr}}</td><td>{{.Redis}}</td><td>{{.Check}}</td><td>{{.Weight}}</td><td>{{.Act}}</td><td>{{.Bck}}</td><td>{{.ChkFail}}</td><td>{{.ChkDown}}</td><td>{{.LastChg}}</td></tr>
{{- end}}
</table>
{{- end}}
</body>
</html>
`
