package runtimeapi

import (
	"context"
	"fmt"
	"time"

	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// view is every process's report folded into one picture, in configuration
// order. "show stat", the metrics and the stats page all render it, so they
// always agree.
//
// Aggregation rules, because Sluice runs several processes where HAProxy's
// stats describe one:
//   - counters (stot, bin, bout, errors, ...) are summed;
//   - gauges (scur, qcur) are summed: the connections now open everywhere;
//   - maxima (smax, qmax) are the sum of the per-process maxima. The true
//     peak lies between the largest per-process maximum and that sum (the
//     peaks may or may not have happened at the same moment, see HAProxy's
//     typed format "M" nature). The sum is the upper bound, the safe side
//     for capacity alerts, and it keeps smax >= scur.
//   - limits (slim) are summed, because each process enforces its own
//     maxconn; "no limit" in any process makes the sum "no limit";
//   - a server's state is the worst any process sees (MAINT, then DOWN,
//     DRAIN, NOLB, going down, UP): a server one process cannot reach is
//     not fine, and operators must see it. Its weight, address and check
//     fields come from that same process so that a row is consistent;
//   - a server no live process reports is shown down ("no process serves
//     it"), with its configured weight and administrative state.
type view struct {
	cfg     *config.Config
	info    Info
	now     time.Time
	proxies []*proxyView
}

// proxyView is one proxy summed over the processes that run it.
type proxyView struct {
	cfg      *config.Proxy
	reported int               // processes that reported the proxy
	fe       *FrontendStats    // nil unless a frontend
	be       *backend.Counters // nil unless a backend
	servers  []*serverView

	// Backend figures derived from the servers' aggregated states.
	act, bck int  // usable active and backup servers
	weight   int  // sum of the weights of the servers in use
	up       bool // some server can take connections (or there are none)
}

// serverView is one server summed over processes.
type serverView struct {
	cfg      *config.Server
	state    backend.State // the worst process's state, with summed counters
	status   string        // state.Status(cfg)
	limit    int           // summed maxconn, 0 = none
	reported int           // processes that reported the server
}

// collect asks the appliance for everything a view needs. A partial answer
// (some process did not reply in time) still makes a view, with the error;
// no answer at all is only an error.
func collect(ctx context.Context, app Appliance, now time.Time) (*view, error) {
	cfg := app.Config()
	if cfg == nil {
		return nil, fmt.Errorf("no configuration is running")
	}
	info := app.Info()
	snaps, err := app.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil, fmt.Errorf("collect process statistics: %w", err)
	}
	if err != nil {
		err = fmt.Errorf("collect process statistics (partial): %w", err)
	}
	return aggregate(cfg, info, snaps, now), err
}

// aggregate folds the snapshots into a view; see view for the rules.
func aggregate(cfg *config.Config, info Info, snaps []Snapshot, now time.Time) *view {
	v := &view{cfg: cfg, info: info, now: now}
	// index[i][name] is process i's report of proxy name.
	index := make([]map[string]*ProxyStats, len(snaps))
	for i := range snaps {
		m := make(map[string]*ProxyStats, len(snaps[i].Proxies))
		for j := range snaps[i].Proxies {
			ps := &snaps[i].Proxies[j]
			m[ps.Name] = ps
		}
		index[i] = m
	}
	for _, p := range cfg.Proxies {
		if p.Disabled {
			continue // a disabled proxy does not run, and HAProxy does not list it
		}
		pv := &proxyView{cfg: p}
		var reports []*ProxyStats
		for _, m := range index {
			if ps := m[p.Name]; ps != nil {
				reports = append(reports, ps)
			}
		}
		pv.reported = len(reports)
		if p.Frontend {
			pv.fe = sumFrontends(reports)
		}
		if p.Backend {
			c := backend.Counters{}
			for _, ps := range reports {
				if ps.Backend != nil {
					addCounters(&c, *ps.Backend)
				}
			}
			pv.be = &c
			for _, sc := range p.Servers {
				pv.servers = append(pv.servers, aggregateServer(sc, reports))
			}
			pv.deriveBackend()
		}
		v.proxies = append(v.proxies, pv)
	}
	return v
}

func sumFrontends(reports []*ProxyStats) *FrontendStats {
	out := &FrontendStats{}
	unlimited := false
	for _, ps := range reports {
		f := ps.Frontend
		if f == nil {
			continue
		}
		out.Cur += f.Cur
		out.Max += f.Max
		if f.Limit == 0 {
			unlimited = true
		}
		out.Limit += f.Limit
		out.Total += f.Total
		out.BytesIn += f.BytesIn
		out.BytesOut += f.BytesOut
		out.Denied += f.Denied
		out.Errors += f.Errors
		out.HTTPReqs += f.HTTPReqs
		out.HTTP1xx += f.HTTP1xx
		out.HTTP2xx += f.HTTP2xx
		out.HTTP3xx += f.HTTP3xx
		out.HTTP4xx += f.HTTP4xx
		out.HTTP5xx += f.HTTP5xx
		out.HTTPOther += f.HTTPOther
		if f.LastSession.After(out.LastSession) {
			out.LastSession = f.LastSession
		}
	}
	if unlimited {
		out.Limit = 0
	}
	return out
}

// addCounters adds c to sum following the view's rules.
func addCounters(sum *backend.Counters, c backend.Counters) {
	sum.Cur += c.Cur
	sum.Max += c.Max
	sum.Total += c.Total
	if c.LastSession.After(sum.LastSession) {
		sum.LastSession = c.LastSession
	}
	sum.BytesIn += c.BytesIn
	sum.BytesOut += c.BytesOut
	sum.ConnErrors += c.ConnErrors
	sum.Retries += c.Retries
	sum.Redispatch += c.Redispatch
	sum.Denied += c.Denied
	sum.QueueCur += c.QueueCur
	sum.QueueMax += c.QueueMax
	// The master runs each check once and every process holds the same
	// check counters: they are not summed.
	sum.CheckFails = max(sum.CheckFails, c.CheckFails)
	sum.CheckDowns = max(sum.CheckDowns, c.CheckDowns)
}

func aggregateServer(sc *config.Server, reports []*ProxyStats) *serverView {
	sv := &serverView{cfg: sc}
	var worst *backend.State
	var counters backend.Counters
	unlimited := false
	for _, ps := range reports {
		for i := range ps.Servers {
			st := &ps.Servers[i].State
			if ps.Servers[i].Name != sc.Name {
				continue
			}
			sv.reported++
			addCounters(&counters, st.Counters)
			if st.MaxConn == 0 {
				unlimited = true
			}
			sv.limit += st.MaxConn
			if worst == nil || worse(*st, *worst) {
				worst = st
			}
			break
		}
	}
	var st backend.State
	if worst != nil {
		st = *worst
	} else {
		st = configState(sc)
	}
	if unlimited || sv.reported == 0 {
		sv.limit = 0
	}
	st.Counters = counters
	sv.state = st
	sv.status = st.Status(sc)
	return sv
}

// configState is the state of a server no live process reports: as
// configured, and down since nothing serves it.
func configState(sc *config.Server) backend.State {
	st := backend.State{
		Weight:      sc.Weight,
		Addr:        sc.Addr,
		MaxConn:     sc.MaxConn,
		CheckHealth: sc.Rise,
		ProcessDown: true,
	}
	if sc.Disabled {
		st.Admin = backend.Maint
	}
	return st
}

// severity orders server states from fine (1) to out of service (5).
func severity(st backend.State) int {
	switch {
	case st.Admin == backend.Maint:
		return 5
	case st.ProcessDown || st.AgentDown || st.Health == backend.Down:
		return 4
	case st.Admin == backend.Drain:
		return 3
	case st.Health == backend.Stopping:
		return 2
	}
	return 1
}

// worse reports whether a is a worse state than b. Within the same
// severity a lower check health is worse: "UP 1/3" is closer to down than
// "UP", "DOWN" further from up than "DOWN 1/2".
func worse(a, b backend.State) bool {
	sa, sb := severity(a), severity(b)
	if sa != sb {
		return sa > sb
	}
	return a.CheckHealth < b.CheckHealth
}

// usable reports whether a server in this state takes new connections.
func usable(st backend.State) bool {
	return st.Admin == backend.Ready && st.Health == backend.Up && !st.AgentDown &&
		!st.ProcessDown && st.Weight > 0
}

// deriveBackend computes act, bck, weight and up as HAProxy does: the
// backend is up when its load-balancing weight is not zero, that is when
// an active server, or else a backup server, can take connections.
func (pv *proxyView) deriveBackend() {
	var wact, wbck int
	for _, sv := range pv.servers {
		if !usable(sv.state) {
			continue
		}
		if sv.cfg.Backup {
			pv.bck++
			wbck += sv.state.Weight
		} else {
			pv.act++
			wact += sv.state.Weight
		}
	}
	pv.weight = wact
	if pv.act == 0 {
		pv.weight = wbck
	}
	pv.up = pv.weight > 0 || len(pv.servers) == 0
}

// backendStatus is HAProxy's backend status text.
func (pv *proxyView) backendStatus() string {
	if pv.up {
		return "UP"
	}
	return "DOWN"
}

// frontendStatus is HAProxy's frontend status text: STOP when no process
// runs it, FULL at its limit, else OPEN.
func (pv *proxyView) frontendStatus() string {
	switch {
	case pv.reported == 0:
		return "STOP"
	case pv.fe.Limit > 0 && pv.fe.Cur >= pv.fe.Limit:
		return "FULL"
	}
	return "OPEN"
}

// proxy returns the view of the proxy with that name, or nil.
func (v *view) proxy(name string) *proxyView {
	for _, pv := range v.proxies {
		if pv.cfg.Name == name {
			return pv
		}
	}
	return nil
}

// server returns the view of server name in pv, or nil.
func (pv *proxyView) server(name string) *serverView {
	for _, sv := range pv.servers {
		if sv.cfg.Name == name {
			return sv
		}
	}
	return nil
}

// seconds is the whole number of seconds from t to now, never negative.
func seconds(now, t time.Time) int64 {
	d := now.Sub(t)
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}
