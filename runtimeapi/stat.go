package runtimeapi

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/backend"
	"github.com/sluicelb/sluice/config"
)

// statHeader is HAProxy 2.6's list of static "show stat" columns, in its
// order. Tools index these columns by position, so every one is printed,
// empty when Sluice has no such figure.
const statHeader = "pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp," +
	"wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid," +
	"throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration," +
	"hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max," +
	"req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt," +
	"qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc," +
	"check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode," +
	"algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse," +
	"cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint," +
	"idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status," +
	"agg_server_check_status,agg_check_status"

// Column positions in statHeader; a test checks that they agree.
const (
	colPxname = iota
	colSvname
	colQcur
	colQmax
	colScur
	colSmax
	colSlim
	colStot
	colBin
	colBout
	colDreq
	colDresp
	colEreq
	colEcon
	colEresp
	colWretr
	colWredis
	colStatus
	colWeight
	colAct
	colBck
	colChkfail
	colChkdown
	colLastchg
	colDowntime
	colQlimit
	colPid
	colIid
	colSid
	colThrottle
	colLbtot
	colTracked
	colType
	colRate
	colRateLim
	colRateMax
	colCheckStatus
	colCheckCode
	colCheckDuration
	colHrsp1xx
	colHrsp2xx
	colHrsp3xx
	colHrsp4xx
	colHrsp5xx
	colHrspOther
	colHanafail
	colReqRate
	colReqRateMax
	colReqTot
	colCliAbrt
	colSrvAbrt
	colCompIn
	colCompOut
	colCompByp
	colCompRsp
	colLastsess
	colLastChk
	colLastAgt
	colQtime
	colCtime
	colRtime
	colTtime
	colAgentStatus
	colAgentCode
	colAgentDuration
	colCheckDesc
	colAgentDesc
	colCheckRise
	colCheckFall
	colCheckHealth
	colAgentRise
	colAgentFall
	colAgentHealth
	colAddr
	colCookie
	colMode
	colAlgo
	colConnRate
	colConnRateMax
	colConnTot
	colIntercepted
	colDcon
	colDses
	colWrew
	colConnect
	colReuse
	colCacheLookups
	colCacheHits
	colSrvIcur
	colSrcIlim
	colQtimeMax
	colCtimeMax
	colRtimeMax
	colTtimeMax
	colEint
	colIdleConnCur
	colSafeConnCur
	colUsedConnCur
	colNeedConnEst
	colUweight
	colAggServerStatus
	colAggServerCheckStatus
	colAggCheckStatus
	numCols
)

// Row types, HAProxy's "type" column and its filter bits.
const (
	typeFrontend = 0
	typeBackend  = 1
	typeServer   = 2

	maskFrontend = 1
	maskBackend  = 2
	maskServer   = 4
)

// aggregatePID is the "pid" column of Sluice's rows. HAProxy puts the
// relative process number there; Sluice's rows sum every process, so the
// column says 0, the master (no child has number 0).
const aggregatePID = 0

// statRow is one CSV line: a frontend, a server or a backend.
type statRow struct {
	kind   int // typeFrontend, typeBackend or typeServer
	iid    int
	sid    int
	fields [numCols]string
}

func (r *statRow) setInt(col int, v int64) { r.fields[col] = strconv.FormatInt(v, 10) }

// statFilter selects rows as "show stat <iid> <type> <sid>" and the "up"
// and "no-maint" modifiers do.
type statFilter struct {
	iid     int // -1 = every proxy
	types   int // mask of maskFrontend, maskBackend, maskServer
	sid     int // -1 = every server
	upOnly  bool
	noMaint bool
}

func allRows() statFilter { return statFilter{iid: -1, types: -1, sid: -1} }

// rows returns the rows HAProxy prints for each proxy: its frontend, its
// servers, then its backend.
func (v *view) rows(f statFilter) []statRow {
	var out []statRow
	for _, pv := range v.proxies {
		if f.iid != -1 && pv.cfg.ID != f.iid {
			continue
		}
		if pv.fe != nil && f.types&maskFrontend != 0 {
			out = append(out, v.frontendRow(pv))
		}
		if pv.be == nil {
			continue
		}
		if f.types&maskServer != 0 {
			for _, sv := range pv.servers {
				if f.sid != -1 && sv.cfg.ID != f.sid {
					continue
				}
				if f.upOnly && severity(sv.state) >= 4 {
					continue
				}
				if f.noMaint && sv.state.Admin == backend.Maint {
					continue
				}
				out = append(out, v.serverRow(pv, sv))
			}
		}
		if f.types&maskBackend != 0 {
			out = append(out, v.backendRow(pv))
		}
	}
	return out
}

func (v *view) baseRow(pv *proxyView, kind, sid int, svname string) statRow {
	r := statRow{kind: kind, iid: pv.cfg.ID, sid: sid}
	r.fields[colPxname] = pv.cfg.Name
	r.fields[colSvname] = svname
	r.setInt(colPid, aggregatePID)
	r.setInt(colIid, int64(pv.cfg.ID))
	r.setInt(colSid, int64(sid))
	r.setInt(colType, int64(kind))
	r.fields[colMode] = string(pv.cfg.Mode)
	return r
}

func (v *view) frontendRow(pv *proxyView) statRow {
	fe := pv.fe
	r := v.baseRow(pv, typeFrontend, 0, "FRONTEND")
	r.setInt(colScur, int64(fe.Cur))
	r.setInt(colSmax, int64(fe.Max))
	if fe.Limit > 0 {
		r.setInt(colSlim, int64(fe.Limit))
	}
	r.setInt(colStot, fe.Total)
	r.setInt(colBin, fe.BytesIn)
	r.setInt(colBout, fe.BytesOut)
	r.setInt(colDreq, fe.Denied)
	r.setInt(colDresp, 0)
	r.setInt(colEreq, fe.Errors)
	r.fields[colStatus] = pv.frontendStatus()
	r.setInt(colConnTot, fe.Total)
	if pv.cfg.Mode == config.ModeHTTP {
		r.setInt(colHrsp1xx, fe.HTTP1xx)
		r.setInt(colHrsp2xx, fe.HTTP2xx)
		r.setInt(colHrsp3xx, fe.HTTP3xx)
		r.setInt(colHrsp4xx, fe.HTTP4xx)
		r.setInt(colHrsp5xx, fe.HTTP5xx)
		r.setInt(colHrspOther, fe.HTTPOther)
		r.setInt(colReqTot, fe.HTTPReqs)
	}
	return r
}

func (v *view) serverRow(pv *proxyView, sv *serverView) statRow {
	st := sv.state
	c := st.Counters
	r := v.baseRow(pv, typeServer, sv.cfg.ID, sv.cfg.Name)
	r.setInt(colQcur, int64(c.QueueCur))
	r.setInt(colQmax, int64(c.QueueMax))
	r.setInt(colScur, int64(c.Cur))
	r.setInt(colSmax, int64(c.Max))
	if sv.limit > 0 {
		r.setInt(colSlim, int64(sv.limit))
	}
	r.setInt(colStot, c.Total)
	r.setInt(colBin, c.BytesIn)
	r.setInt(colBout, c.BytesOut)
	r.setInt(colDresp, 0)
	r.setInt(colEcon, c.ConnErrors)
	r.setInt(colWretr, c.Retries)
	r.setInt(colWredis, c.Redispatch)
	r.fields[colStatus] = sv.status
	r.setInt(colWeight, int64(effectiveWeight(st)))
	r.setInt(colUweight, int64(st.Weight))
	if sv.cfg.Backup {
		r.setInt(colAct, 0)
		r.setInt(colBck, 1)
	} else {
		r.setInt(colAct, 1)
		r.setInt(colBck, 0)
	}
	if sv.cfg.Check {
		r.setInt(colChkfail, c.CheckFails)
		r.setInt(colChkdown, c.CheckDowns)
		r.setInt(colCheckRise, int64(sv.cfg.Rise))
		r.setInt(colCheckFall, int64(sv.cfg.Fall))
		r.setInt(colCheckHealth, int64(st.CheckHealth))
		if st.CheckStatus != "" {
			r.fields[colCheckStatus] = st.CheckStatus
			r.fields[colCheckDesc] = checkDesc(st.CheckStatus)
			if checkDone(st.CheckStatus) {
				r.setInt(colCheckDuration, st.CheckTime.Milliseconds())
			}
		}
	}
	if !st.LastChange.IsZero() {
		r.setInt(colLastchg, seconds(v.now, st.LastChange))
	}
	r.setInt(colLbtot, c.Total)
	r.setInt(colLastsess, lastSess(v, c))
	r.fields[colAddr] = addrText(st.Addr)
	return r
}

func (v *view) backendRow(pv *proxyView) statRow {
	c := pv.be
	r := v.baseRow(pv, typeBackend, 0, "BACKEND")
	r.setInt(colQcur, int64(c.QueueCur))
	r.setInt(colQmax, int64(c.QueueMax))
	r.setInt(colScur, int64(c.Cur))
	r.setInt(colSmax, int64(c.Max))
	r.setInt(colStot, c.Total)
	r.setInt(colBin, c.BytesIn)
	r.setInt(colBout, c.BytesOut)
	r.setInt(colDreq, 0)
	r.setInt(colDresp, 0)
	// HAProxy counts in the backend's econ the connections that found no
	// server at all, besides the failed connection attempts.
	r.setInt(colEcon, c.ConnErrors+c.Denied)
	r.setInt(colWretr, c.Retries)
	r.setInt(colWredis, c.Redispatch)
	r.fields[colStatus] = pv.backendStatus()
	r.setInt(colWeight, int64(pv.weight))
	r.setInt(colUweight, int64(pv.weight))
	r.setInt(colAct, int64(pv.act))
	r.setInt(colBck, int64(pv.bck))
	r.setInt(colLbtot, c.Total)
	r.setInt(colLastsess, lastSess(v, *c))
	r.fields[colAlgo] = string(pv.cfg.Balance)
	return r
}

// effectiveWeight is the weight the balancer uses: none while draining.
func effectiveWeight(st backend.State) int {
	if st.Admin != backend.Ready {
		return 0
	}
	return st.Weight
}

// lastSess is HAProxy's lastsess: seconds since the last connection, -1
// when there was none.
func lastSess(v *view, c backend.Counters) int64 {
	if c.LastSession.IsZero() {
		return -1
	}
	return seconds(v.now, c.LastSession)
}

// addrText is a server address as HAProxy's stats print it: ip:port with
// brackets around IPv6, else the address as written.
func addrText(a addr.Addr) string {
	if a.Family == addr.TCP {
		return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
	}
	return a.Text
}

// checkStatus is one of HAProxy's health check statuses.
type checkStatus struct{ name, desc string }

// checkStatuses lists HAProxy's health check statuses in its numbering
// (the server state file stores the number), with their descriptions.
func checkStatuses() []checkStatus {
	return []checkStatus{
		{"UNK", "Unknown"},
		{"INI", "Initializing"},
		{"", "* starting health check"}, // HCHK_STATUS_START
		{"HANA", "Health analyze"},
		{"SOCKERR", "Socket error"},
		{"L4OK", "Layer4 check passed"},
		{"L4TOUT", "Layer4 timeout"},
		{"L4CON", "Layer4 connection problem"},
		{"L6OK", "Layer6 check passed"},
		{"L6TOUT", "Layer6 timeout"},
		{"L6RSP", "Layer6 invalid response"},
		{"L7TOUT", "Layer7 timeout"},
		{"L7RSP", "Layer7 invalid response"},
		{"L7OK", "Layer7 check passed"},
		{"L7OKC", "Layer7 check conditionally passed"},
		{"L7STS", "Layer7 wrong status"},
		{"PROCERR", "External check error"},
		{"PROCTOUT", "External check timeout"},
		{"PROCOK", "External check passed"},
	}
}

// checkStatusNum is HAProxy's number for a check status name, 0 (UNK)
// when unknown.
func checkStatusNum(name string) int {
	for i, s := range checkStatuses() {
		if s.name != "" && s.name == name {
			return i
		}
	}
	return 0
}

func checkDesc(name string) string {
	for _, s := range checkStatuses() {
		if s.name != "" && s.name == name {
			return s.desc
		}
	}
	return ""
}

// checkDone reports whether a check status is the result of a finished
// check, the only ones HAProxy gives a duration.
func checkDone(name string) bool {
	switch name {
	case "", "UNK", "INI", "HANA":
		return false
	}
	return true
}

// checkResult is HAProxy's CHK_RES_* for a status: 0 unknown, 2 failed,
// 3 passed, 4 conditionally passed.
func checkResult(name string) int {
	switch name {
	case "L4OK", "L6OK", "L7OK", "PROCOK":
		return 3
	case "L7OKC":
		return 4
	case "SOCKERR", "L4TOUT", "L4CON", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP", "L7STS", "PROCERR", "PROCTOUT":
		return 2
	}
	return 0
}

// writeCSV prints the rows in HAProxy's CSV format: a "# " header line,
// then one line per row, every field followed by a comma as HAProxy does.
func writeCSV(b *strings.Builder, rows []statRow) {
	b.WriteString("# ")
	for _, name := range strings.Split(statHeader, ",") {
		b.WriteString(name)
		b.WriteByte(',')
	}
	b.WriteByte('\n')
	for i := range rows {
		for _, f := range rows[i].fields {
			b.WriteString(csvField(f))
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
}

// csvField quotes a field only when it would be ambiguous, as HAProxy does.
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\n\r") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// writeTyped prints the rows in HAProxy's typed format, one field per
// line, only the fields that have a value:
// <obj>.<px_id>.<id>.<fpos>.<fname>.<process_num>:<tags>:<type>:<value>
// The process number is aggregatePID, since the rows cover every process.
func writeTyped(b *strings.Builder, rows []statRow) {
	names := strings.Split(statHeader, ",")
	for i := range rows {
		r := &rows[i]
		obj := "FBS"[r.kind]
		for col, val := range r.fields {
			if val == "" {
				continue
			}
			tags, typ := statFieldType(col)
			// A typed line ends at its newline: keep values on one line.
			val = strings.NewReplacer("\n", " ", "\r", " ").Replace(val)
			fmt.Fprintf(b, "%c.%d.%d.%d.%s.%d:%s:%s:%s\n", obj, r.iid, r.sid, col, names[col], aggregatePID, tags, typ, val)
		}
	}
}

// statFieldType returns the typed format's origin/nature/scope tags and
// the value type of a column, following HAProxy's choices.
func statFieldType(col int) (tags, typ string) {
	switch col {
	case colPxname, colSvname:
		return "KNS", "str"
	case colStatus, colCheckStatus, colCheckDesc:
		return "SGP", "str"
	case colAddr, colMode, colAlgo, colCookie:
		return "CGS", "str"
	case colLastChk, colLastAgt, colAgentStatus, colAgentDesc, colTracked:
		return "MGP", "str"
	case colPid:
		return "KGP", "u32"
	case colIid, colSid:
		return "KGS", "u32"
	case colType, colCheckRise, colCheckFall:
		return "CGS", "u32"
	case colSlim:
		return "CLP", "u32"
	case colSmax, colQmax:
		return "MMP", "u32"
	case colAct, colBck, colCheckHealth:
		return "SGP", "u32"
	case colWeight, colUweight:
		return "MaP", "u32"
	case colLastchg:
		return "MAP", "u32"
	case colLastsess:
		return "MAP", "s32"
	case colCheckDuration:
		return "MDP", "u64"
	case colScur, colQcur:
		return "MGP", "u32"
	case colStot, colBin, colBout, colDreq, colDresp, colEreq, colEcon, colEresp, colWretr,
		colWredis, colChkfail, colChkdown, colLbtot, colHrsp1xx, colHrsp2xx, colHrsp3xx,
		colHrsp4xx, colHrsp5xx, colHrspOther, colReqTot, colConnTot:
		return "MCP", "u64"
	}
	return "MGP", "u32"
}
