package worker

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/sluicelb/sluice/accesslog"
	"github.com/sluicelb/sluice/dispatcher"
)

// lineBufs recycles access log line buffers.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// emit formats and sends one access log line in the proxy's format.
func emit(l *accesslog.Logger, format string, e *accesslog.Entry) {
	bp := lineBufs.Get().(*[]byte)
	line := (*bp)[:0]
	switch format {
	case "httplog":
		line = accesslog.AppendHTTP(line, e)
	case "tcplog":
		line = accesslog.AppendTCP(line, e)
	default:
		line = accesslog.AppendConnect(line, e)
	}
	l.Log(line)
	*bp = line
	lineBufs.Put(bp)
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// logTCP writes the line of a tcp-mode connection that has ended.
func (fe *frontend) logTCP(src, dst net.Addr, accepted time.Time, res dispatcher.Result) {
	e := accesslog.Entry{
		Client:       addrPort(src),
		Local:        addrPort(dst),
		ListenerID:   fe.bind.ID,
		Date:         accepted,
		Frontend:     fe.proxy.Name,
		Mode:         string(fe.proxy.Mode),
		TLS:          fe.tls != nil,
		Backend:      res.Backend,
		Server:       res.Server,
		Tw:           res.Tw,
		Tc:           res.Tc,
		Tt:           time.Since(accepted),
		BytesRead:    res.BytesFromServer,
		Term:         res.Term,
		Retries:      res.Retries,
		Redispatched: res.Redispatched,
		SrvQueue:     res.SrvQueue,
		BackendQueue: res.BackendQueue,
		FeConn:       fe.active(),
		BeConn:       fe.backend.Active(),
	}
	emit(fe.alog, fe.proxy.LogFormat, &e)
}

// logRequest writes the line of an http-mode request that has ended.
func (h *httpServer) logRequest(r *http.Request, w *statusWriter, info *requestInfo, start time.Time) {
	h.counters.response(w.status, max(r.ContentLength, 0), w.bytes)
	if h.alog == nil {
		return
	}
	peer := info.peer
	if peer == nil {
		peer = clientAddr(r)
	}
	e := accesslog.Entry{
		Client:    addrPort(peer),
		Date:      start,
		Frontend:  h.proxy.Name,
		Mode:      string(h.proxy.Mode),
		TLS:       r.TLS != nil,
		TR:        0,
		Tw:        0,
		Tc:        info.connect,
		Tr:        accesslog.NotReached,
		Ta:        time.Since(start),
		Status:    w.status,
		BytesRead: w.bytes,
		Term:      "----",
		Method:    r.Method,
		URI:       r.RequestURI,
		Version:   r.Proto,
	}
	e.Backend = h.proxy.Name // HAProxy logs the frontend when no backend was chosen
	if info.be != nil {
		e.Backend = info.be.proxy.Name
	}
	if info.server != nil {
		e.Server = info.server.Name()
		e.Tr = info.response
	}
	switch {
	case info.err != nil && info.server == nil:
		e.Term = "SC--" // no server could be used
	case info.err != nil:
		e.Term = "SH--" // the server failed before a complete response
	case info.term != "":
		e.Term = info.term // answered by Sluice itself
	}
	emit(h.alog, h.proxy.LogFormat, &e)
}
