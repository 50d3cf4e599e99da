package runtimeapi

import (
	"encoding/csv"
	"reflect"
	"strings"
	"testing"
	"time"
)

// haproxy26Columns is HAProxy 2.6's static "show stat" column list.
const haproxy26Columns = "pxname svname qcur qmax scur smax slim stot bin bout dreq dresp ereq econ eresp " +
	"wretr wredis status weight act bck chkfail chkdown lastchg downtime qlimit pid iid sid throttle " +
	"lbtot tracked type rate rate_lim rate_max check_status check_code check_duration hrsp_1xx " +
	"hrsp_2xx hrsp_3xx hrsp_4xx hrsp_5xx hrsp_other hanafail req_rate req_rate_max req_tot cli_abrt " +
	"srv_abrt comp_in comp_out comp_byp comp_rsp lastsess last_chk last_agt qtime ctime rtime ttime " +
	"agent_status agent_code agent_duration check_desc agent_desc check_rise check_fall check_health " +
	"agent_rise agent_fall agent_health addr cookie mode algo conn_rate conn_rate_max conn_tot " +
	"intercepted dcon dses wrew connect reuse cache_lookups cache_hits srv_icur src_ilim qtime_max " +
	"ctime_max rtime_max ttime_max eint idle_conn_cur safe_conn_cur used_conn_cur need_conn_est " +
	"uweight agg_server_status agg_server_check_status agg_check_status"

func TestColumnConstants(t *testing.T) {
	names := strings.Split(statHeader, ",")
	if !reflect.DeepEqual(names, strings.Fields(haproxy26Columns)) {
		t.Fatalf("statHeader differs from HAProxy 2.6's columns")
	}
	if len(names) != numCols {
		t.Fatalf("%d header names, %d column constants", len(names), numCols)
	}
	for col, name := range map[int]string{
		colPxname: "pxname", colScur: "scur", colStatus: "status", colPid: "pid", colType: "type",
		colCheckStatus: "check_status", colHrsp1xx: "hrsp_1xx", colReqTot: "req_tot", colLastsess: "lastsess",
		colCheckDesc: "check_desc", colCheckHealth: "check_health", colAddr: "addr", colMode: "mode",
		colAlgo: "algo", colConnTot: "conn_tot", colUweight: "uweight", colAggCheckStatus: "agg_check_status",
	} {
		if names[col] != name {
			t.Errorf("column %d is %q, constant says %q", col, names[col], name)
		}
	}
}

// parseStat reads "show stat" output with encoding/csv, as monitoring
// tools do, and returns the header and the rows as maps by column name.
func parseStat(t *testing.T, out string) ([]string, []map[string]string) {
	t.Helper()
	out = strings.TrimSuffix(out, "\n\n")
	if !strings.HasPrefix(out, "# ") {
		t.Fatalf("no '# ' header: %q", out)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("csv: %v", err)
	}
	header := recs[0]
	var rows []map[string]string
	for _, rec := range recs[1:] {
		m := make(map[string]string)
		for i, v := range rec {
			m[header[i]] = v
		}
		rows = append(rows, m)
	}
	return header, rows
}

func findRow(t *testing.T, rows []map[string]string, px, sv string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r["pxname"] == px && r["svname"] == sv {
			return r
		}
	}
	t.Fatalf("no row %s/%s", px, sv)
	return nil
}

func TestShowStatCSV(t *testing.T) {
	c, _ := testCLI(t)
	header, rows := parseStat(t, run(c, levelUser, "show stat"))
	// HAProxy ends every line with a comma: one empty last column.
	want := append(strings.Fields(haproxy26Columns), "")
	if !reflect.DeepEqual(header, want) {
		t.Fatalf("header:\n got %q\nwant %q", header, want)
	}

	var order []string
	for _, r := range rows {
		order = append(order, r["pxname"]+"/"+r["svname"])
	}
	wantOrder := []string{"fe_main/FRONTEND", "be_app/s1", "be_app/s2", "be_app/bk", "be_app/BACKEND",
		"web/FRONTEND", "web/w1", "web/BACKEND", "sock/u1", "sock/BACKEND"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("rows %v, want %v (the disabled proxy is not listed)", order, wantOrder)
	}

	checks := []struct {
		px, sv string
		want   map[string]string
	}{
		// Counters and gauges summed, maxima summed, limits summed.
		{"fe_main", "FRONTEND", map[string]string{"scur": "5", "smax": "9", "slim": "1000", "stot": "150",
			"bin": "1500", "bout": "2700", "ereq": "1", "status": "OPEN", "pid": "0", "iid": "1", "sid": "0",
			"type": "0", "mode": "tcp", "hrsp_2xx": "", "conn_tot": "150", "qcur": ""}},
		// Process 2 sees s1 down: the worst state wins, with its check fields.
		{"be_app", "s1", map[string]string{"scur": "2", "smax": "7", "stot": "90", "status": "DOWN",
			"weight": "100", "act": "1", "bck": "0", "chkfail": "7", "chkdown": "1", "lastchg": "90",
			"check_status": "L4CON", "check_duration": "3", "check_desc": "Layer4 connection problem",
			"check_rise": "2", "check_fall": "3", "check_health": "0", "addr": "10.0.0.1:80",
			"type": "2", "sid": "1", "iid": "2", "lastsess": "5", "econ": "2", "slim": ""}},
		{"be_app", "s2", map[string]string{"status": "DRAIN", "weight": "0", "uweight": "50", "slim": "40",
			"scur": "5", "lastsess": "-1", "check_status": "", "chkfail": ""}},
		{"be_app", "bk", map[string]string{"status": "no check", "act": "0", "bck": "1"}},
		// s1 down and s2 draining: only the backup serves.
		{"be_app", "BACKEND", map[string]string{"status": "UP", "act": "0", "bck": "1", "weight": "10",
			"scur": "8", "smax": "10", "stot": "185", "econ": "3", "wretr": "1", "algo": "roundrobin", "type": "1"}},
		{"web", "FRONTEND", map[string]string{"mode": "http", "hrsp_2xx": "10", "hrsp_5xx": "2", "req_tot": "12", "slim": ""}},
		{"web", "w1", map[string]string{"addr": "[::1]:8080", "status": "no check"}},
		// No process runs sock: its disabled server shows MAINT, the backend DOWN.
		{"sock", "u1", map[string]string{"status": "MAINT", "addr": "unix@/run/app.sock", "scur": "0"}},
		{"sock", "BACKEND", map[string]string{"status": "DOWN", "algo": "first"}},
	}
	for _, ck := range checks {
		r := findRow(t, rows, ck.px, ck.sv)
		for col, want := range ck.want {
			if r[col] != want {
				t.Errorf("%s/%s %s = %q, want %q", ck.px, ck.sv, col, r[col], want)
			}
		}
	}
}

func TestShowStatFilters(t *testing.T) {
	c, _ := testCLI(t)
	names := func(line string) []string {
		_, rows := parseStat(t, run(c, levelUser, line))
		var out []string
		for _, r := range rows {
			out = append(out, r["pxname"]+"/"+r["svname"])
		}
		return out
	}
	tests := []struct {
		line string
		want []string
	}{
		{"show stat be_app 4 -1", []string{"be_app/s1", "be_app/s2", "be_app/bk"}},
		{"show stat 2 2 -1", []string{"be_app/BACKEND"}},
		{"show stat -1 1 -1", []string{"fe_main/FRONTEND", "web/FRONTEND"}},
		{"show stat be_app -1 2", []string{"be_app/s2", "be_app/BACKEND"}},
		{"show stat be_app 4 -1 up", []string{"be_app/s2", "be_app/bk"}},
		{"show stat sock 4 -1 no-maint", nil},
	}
	for _, tt := range tests {
		if got := names(tt.line); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestShowStatTyped(t *testing.T) {
	c, _ := testCLI(t)
	out := run(c, levelUser, "show stat typed")
	for _, want := range []string{
		"F.1.0.0.pxname.0:KNS:str:fe_main\n",
		"F.1.0.4.scur.0:MGP:u32:5\n",
		"S.2.1.17.status.0:SGP:str:DOWN\n",
		"S.2.1.73.addr.0:CGS:str:10.0.0.1:80\n",
		"B.2.0.76.algo.0:CGS:str:roundrobin\n",
		"S.3.1.73.addr.0:CGS:str:[::1]:8080\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("typed output lacks %q", want)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n\n"), "\n") {
		if strings.Count(line, ":") < 3 || strings.Count(strings.SplitN(line, ":", 2)[0], ".") != 5 {
			t.Errorf("malformed typed line %q", line)
		}
	}
}

func TestShowInfo(t *testing.T) {
	c, _ := testCLI(t)
	want := `Name: Sluice
Version: 1.2.3
Release_date: 2025/01/01
Nbproc: 2
Process_num: 0
Pid: 100
Uptime: 1d 2h01m01s
Uptime_sec: 93661
Ulimit-n: 2035
Maxsock: 2035
Maxconn: 1000
Hard_maxconn: 1000
CurrConns: 6
CumConns: 159
CumReq: 12
Stopping: 0
Listeners: 2
TotalBytesOut: 2700
Start_time_sec: 1735693384

`
	if got := run(c, levelUser, "show info"); got != want {
		t.Errorf("show info:\n%s\nwant:\n%s", got, want)
	}
	typed := run(c, levelUser, "show info typed")
	for _, w := range []string{"0.Name.0:POS:str:Sluice\n", "15.Maxconn.0:CLP:u32:1000\n", "17.CurrConns.0:MGP:u32:6\n"} {
		if !strings.Contains(typed, w) {
			t.Errorf("show info typed lacks %q:\n%s", w, typed)
		}
	}
}

func TestShowProc(t *testing.T) {
	c, app := testCLI(t)
	app.info.Processes[1].Alive = false
	want := "" +
		"#<PID>          <type>          <reloads>       <uptime>        <version>       <process>       <generation>    <role>          <restarts>\n" +
		"100             master          2               1d02h01m01s     1.2.3           0               3               master          -\n" +
		"# workers\n" +
		"101             worker          -               0d01h00m00s     1.2.3           1               1               dispatcher      0\n" +
		"# dead workers\n" +
		"102             worker          -               0d00h01m30s     1.2.3           2               2               worker          1\n\n"
	if got := run(c, levelUser, "show proc"); got != want {
		t.Errorf("show proc:\n%q\nwant\n%q", got, want)
	}
}

func TestShowSess(t *testing.T) {
	c, _ := testCLI(t)
	want := "" +
		"0x0100000000000007: proto=tcpv4 src=192.0.2.1:40000 fe=fe_main be=be_app srv=s1 age=1m5s idle=2s proc=1\n" +
		"0x0200000000000001: proto=tcpv6 src=[2001:db8::1]:5555 fe=web be=web srv=<NONE> age=3s idle=0s proc=2\n\n"
	if got := run(c, levelOperator, "show sess"); got != want {
		t.Errorf("show sess:\n%q\nwant\n%q", got, want)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m1s", time.Hour: "1h0m0s",
		26*time.Hour + 5*time.Second: "1d2h0m5s", -time.Second: "0s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestShowServersState(t *testing.T) {
	c, _ := testCLI(t)
	out := run(c, levelUser, "show servers state")
	wantHead := "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight " +
		"srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state " +
		"srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl " +
		"srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
	if !strings.HasPrefix(out, wantHead) {
		t.Fatalf("header:\n%s", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n")[2:]
	want := []string{
		"2 be_app 1 s1 10.0.0.1 0 0 100 100 90 7 2 0 6 0 0 0 - 80 - 0 0 - - 0",
		"2 be_app 2 s2 10.0.0.2 2 8 50 50 3600 0 0 4 0 0 0 0 - 80 - 0 0 - - 0",
		"2 be_app 3 bk 10.0.0.3 2 0 10 10 3600 0 0 4 0 0 0 0 - 80 - 0 0 - - 0",
		"3 web 1 w1 ::1 2 0 1 1 3600 0 0 4 0 0 0 0 - 8080 - 0 0 - - 0",
		"5 sock 1 u1 - 0 5 1 1 0 0 0 0 0 0 0 0 - 0 - 0 0 - - 0",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	one := run(c, levelUser, "show servers state #3")
	if !strings.HasSuffix(one, "\n3 web 1 w1 ::1 2 0 1 1 3600 0 0 4 0 0 0 0 - 8080 - 0 0 - - 0\n\n") || strings.Contains(one, "be_app") {
		t.Errorf("show servers state #3:\n%s", one)
	}
}
