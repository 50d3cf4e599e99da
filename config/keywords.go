package config

import (
	"sort"
	"strings"
)

// status says how far a keyword is implemented.
type status int

const (
	active      status = iota
	notActive          // parsed and checked, but the code using it has not landed yet
	unsupported        // a HAProxy keyword sluice does not implement: refused by name
)

// keyword is one entry of the keyword table.
type keyword struct {
	name string // one or two words: "balance", "timeout connect"
	in   where  // where it may be used
	// ignored are the proxies that accept it but ignore it with a warning,
	// as HAProxy does for keywords of the other side (e.g. "balance" in a
	// frontend).
	ignored where
	status  status
	neg     bool // accepts the "no" prefix
	// args is, for bind, server and stats socket options, how many words
	// follow the option's name. Lines check their own arguments.
	args  int
	parse func(p *parser, s *stmt) error
}

// keywords is the keyword table: every keyword sluice reads, for every
// section and for bind, server and stats socket lines. Where HAProxy
// allows a keyword follows HAProxy's keyword matrix (its configuration
// manual, section 4.1).
var keywords = []keyword{
	// global
	{name: "nbproc", in: inGlobal, parse: (*parser).nbproc},
	{name: "nbthread", in: inGlobal, parse: (*parser).nbthread},
	{name: "cpu-map", in: inGlobal, parse: (*parser).cpuMap},
	{name: "maxconn", in: inGlobal, parse: (*parser).globalMaxConn},
	{name: "stats socket", in: inGlobal, parse: (*parser).statsSocket},
	{name: "stats timeout", in: inGlobal, parse: (*parser).statsTimeout},
	{name: "log", in: inGlobal, parse: (*parser).globalLog},
	{name: "hard-stop-after", in: inGlobal, parse: (*parser).hardStopAfter},
	{name: "server-state-file", in: inGlobal, parse: (*parser).serverStateFile},
	{name: "load-server-state-from-file", in: inBack, ignored: inFrontend, parse: (*parser).loadServerState},
	{name: "tune.maxaccept", in: inGlobal, parse: (*parser).tuneMaxAccept},
	{name: "tune.bufsize", in: inGlobal, parse: (*parser).tuneBufSize},
	{name: "tune.http.maxhdr", in: inGlobal, parse: (*parser).tuneMaxHdr},
	{name: "user", in: inGlobal, parse: (*parser).user},
	{name: "uid", in: inGlobal, parse: (*parser).uid},
	{name: "group", in: inGlobal, parse: (*parser).group},
	{name: "gid", in: inGlobal, parse: (*parser).gid},
	{name: "chroot", in: inGlobal, parse: (*parser).chroot},
	{name: "pidfile", in: inGlobal, parse: (*parser).pidFile},
	{name: "daemon", in: inGlobal, parse: (*parser).daemon},
	{name: "strict-limits", in: inGlobal, neg: true, parse: (*parser).strictLimits},
	{name: "master-worker", in: inGlobal, parse: (*parser).masterWorker},
	{name: "config-signing-key", in: inGlobal, parse: (*parser).configSigningKey},

	// proxies
	{name: "mode", in: inProxies, parse: (*parser).mode},
	{name: "bind", in: inFrontend | inListen, ignored: inBackend, parse: (*parser).bind},
	{name: "bind-process", in: inProxies, parse: (*parser).bindProcess},
	{name: "balance", in: inBack, ignored: inFrontend, parse: (*parser).balance},
	{name: "server", in: inListen | inBackend, parse: (*parser).server},
	{name: "server-template", in: inListen | inBackend, parse: (*parser).serverTemplate},
	{name: "default_backend", in: inFront, ignored: inBackend, parse: (*parser).defaultBackend},
	{name: "use_backend", in: inFrontend | inListen, ignored: inBackend, parse: (*parser).useBackend},
	{name: "acl", in: inFrontend | inListen | inBackend, parse: (*parser).acl},
	{name: "http-request", in: inFrontend | inListen | inBackend, parse: (*parser).httpRequest},
	{name: "http-response", in: inFrontend | inListen | inBackend, parse: (*parser).httpResponse},
	{name: "errorfile", in: inProxies, parse: (*parser).errorFile},
	{name: "http-reuse", in: inBack, ignored: inFrontend, parse: (*parser).httpReuse},
	{name: "timeout connect", in: inBack, ignored: inFrontend, parse: (*parser).timeout},
	{name: "timeout client", in: inFront, ignored: inBackend, parse: (*parser).timeout},
	{name: "timeout server", in: inBack, ignored: inFrontend, parse: (*parser).timeout},
	{name: "timeout tunnel", in: inBack, ignored: inFrontend, parse: (*parser).timeout},
	{name: "timeout check", in: inBack, ignored: inFrontend, parse: (*parser).timeout},
	{name: "timeout queue", in: inBack, ignored: inFrontend, parse: (*parser).timeout},
	{name: "timeout http-request", in: inProxies, parse: (*parser).timeout},
	{name: "timeout http-keep-alive", in: inProxies, parse: (*parser).timeout},
	{name: "maxconn", in: inFront, ignored: inBackend, parse: (*parser).proxyMaxConn},
	{name: "option forwardfor", in: inProxies, parse: (*parser).forwardFor},
	{name: "log", in: inProxies, neg: true, parse: (*parser).proxyLog},
	{name: "option tcplog", in: inFront, ignored: inBackend, parse: (*parser).logFormat},
	{name: "option httplog", in: inFront, ignored: inBackend, parse: (*parser).logFormat},
	{name: "retries", in: inBack, ignored: inFrontend, parse: (*parser).retries},
	{name: "option redispatch", in: inBack, ignored: inFrontend, neg: true, parse: (*parser).redispatch},
	{name: "disabled", in: inProxies, parse: (*parser).disabled},
	{name: "enabled", in: inProxies, parse: (*parser).disabled},
	{name: "id", in: inFrontend | inListen | inBackend, parse: (*parser).proxyID},

	// bind options
	{name: "process", in: onBind, args: 1, parse: (*parser).bindProcesses},
	{name: "thread", in: onBind, args: 1, parse: (*parser).bindProcesses},
	{name: "accept-proxy", in: onBind, parse: (*parser).acceptProxy},
	{name: "ssl", in: onBind, parse: (*parser).ssl},
	{name: "crt", in: onBind, args: 1, parse: (*parser).crt},
	{name: "alpn", in: onBind, args: 1, parse: (*parser).alpn},
	{name: "name", in: onBind, args: 1, parse: (*parser).bindName},
	{name: "id", in: onBind, args: 1, parse: (*parser).bindID},
	{name: "maxconn", in: onBind, args: 1, parse: (*parser).bindMaxConn},
	{name: "crt-list", in: onBind, args: 1, parse: (*parser).crtList},
	{name: "ssl-min-ver", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "ssl-max-ver", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "ciphers", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "ciphersuites", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "curves", in: onBind, args: 1, parse: (*parser).sslWord},
	{name: "verify", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "ca-file", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "crl-file", in: onBind | onServer, args: 1, parse: (*parser).sslWord},
	{name: "no-sslv3", in: onBind | onServer, parse: (*parser).noVersion},
	{name: "no-tlsv10", in: onBind | onServer, parse: (*parser).noVersion},
	{name: "no-tlsv11", in: onBind | onServer, parse: (*parser).noVersion},
	{name: "no-tlsv12", in: onBind | onServer, parse: (*parser).noVersion},
	{name: "no-tlsv13", in: onBind | onServer, parse: (*parser).noVersion},
	{name: "tls-ticket-keys", in: onBind, args: 1, parse: (*parser).ticketKeys},
	{name: "no-tls-tickets", in: onBind, parse: (*parser).noTLSTickets},
	{name: "strict-sni", in: onBind, parse: (*parser).strictSNI},
	{name: "ech-public-name", in: onBind, args: 1, parse: (*parser).echPublicName},

	// server options
	{name: "send-proxy", in: onServer, parse: (*parser).sendProxy},
	{name: "send-proxy-v2", in: onServer, parse: (*parser).sendProxy},
	{name: "check", in: onServer, parse: (*parser).check},
	{name: "inter", in: onServer, args: 1, parse: (*parser).inter},
	{name: "rise", in: onServer, args: 1, parse: (*parser).riseFall},
	{name: "fall", in: onServer, args: 1, parse: (*parser).riseFall},
	{name: "weight", in: onServer, args: 1, parse: (*parser).weight},
	{name: "maxconn", in: onServer, args: 1, parse: (*parser).serverMaxConn},
	{name: "backup", in: onServer, parse: (*parser).backup},
	{name: "disabled", in: onServer, parse: (*parser).serverDisabled},
	{name: "id", in: onServer, args: 1, parse: (*parser).serverID},
	{name: "resolvers", in: onServer, args: 1, parse: (*parser).serverResolvers},
	{name: "resolve-prefer", in: onServer, args: 1, parse: (*parser).resolvePrefer},
	{name: "resolve-net", in: onServer, args: 1, parse: (*parser).resolveNet},
	{name: "init-addr", in: onServer, args: 1, parse: (*parser).initAddr},
	{name: "ssl", in: onServer, parse: (*parser).serverSSL},
	{name: "sni", in: onServer, args: 1, parse: (*parser).serverSNI},
	{name: "crt", in: onServer, args: 1, parse: (*parser).serverCrt},
	{name: "alpn", in: onServer, args: 1, parse: (*parser).serverALPN},
	{name: "proto", in: onServer, args: 1, parse: (*parser).serverProto},

	// resolvers sections
	{name: "nameserver", in: inResolvers, parse: (*parser).nameserver},
	{name: "parse-resolv-conf", in: inResolvers, parse: (*parser).parseResolvConf},
	{name: "accepted_payload_size", in: inResolvers, parse: (*parser).acceptedPayloadSize},
	{name: "resolve_retries", in: inResolvers, parse: (*parser).resolveRetries},
	{name: "timeout resolve", in: inResolvers, parse: (*parser).resolversTimeout},
	{name: "timeout retry", in: inResolvers, parse: (*parser).resolversTimeout},
	{name: "hold valid", in: inResolvers, parse: (*parser).hold},
	{name: "hold nx", in: inResolvers, parse: (*parser).hold},
	{name: "hold timeout", in: inResolvers, parse: (*parser).hold},
	{name: "hold refused", in: inResolvers, parse: (*parser).hold},
	{name: "hold other", in: inResolvers, parse: (*parser).hold},
	{name: "hold obsolete", in: inResolvers, parse: (*parser).hold},

	// compression (compression.go)
	{name: "compression algo", in: inProxies, parse: (*parser).compressionAlgo},
	{name: "compression algo-res", in: inProxies, parse: (*parser).compressionAlgo},
	{name: "compression type", in: inProxies, parse: (*parser).compressionType},
	{name: "compression type-res", in: inProxies, parse: (*parser).compressionType},
	{name: "compression offload", in: inProxies, parse: (*parser).compressionOffload},
	{name: "compression minsize-res", in: inProxies, parse: (*parser).compressionMinSize},
	{name: "compression direction", in: inProxies, parse: (*parser).compressionDirection},
	{name: "compression algo-req", in: inProxies, status: unsupported},
	{name: "compression type-req", in: inProxies, status: unsupported},
	{name: "compression minsize-req", in: inProxies, status: unsupported},

	// cache sections (cache.go)
	{name: "total-max-size", in: inCache, parse: (*parser).cacheTotalMaxSize},
	{name: "max-object-size", in: inCache, parse: (*parser).cacheMaxObjectSize},
	{name: "max-age", in: inCache, parse: (*parser).cacheMaxAge},
	{name: "process-vary", in: inCache, parse: (*parser).cacheProcessVary},
	{name: "max-secondary-entries", in: inCache, parse: (*parser).cacheMaxSecondary},

	// stats socket options
	{name: "mode", in: onStatsSocket, args: 1, parse: (*parser).socketMode},
	{name: "level", in: onStatsSocket, args: 1, parse: (*parser).socketLevel},
	{name: "user", in: onStatsSocket, args: 1, parse: (*parser).socketOwner},
	{name: "uid", in: onStatsSocket, args: 1, parse: (*parser).socketOwner},
	{name: "group", in: onStatsSocket, args: 1, parse: (*parser).socketOwner},
	{name: "gid", in: onStatsSocket, args: 1, parse: (*parser).socketOwner},
	{name: "expose-fd", in: onStatsSocket, args: 1, parse: (*parser).exposeFD},

	// HAProxy keywords sluice does not implement, refused by name rather
	// than as unknown words.
	{name: "default-server", in: inBack, status: unsupported},
	{name: "tcp-request", in: inProxies, status: unsupported},
	{name: "tcp-response", in: inBack, status: unsupported},
	{name: "stick-table", in: inFrontend | inListen | inBackend, status: unsupported},
	{name: "cookie", in: inBack, status: unsupported},
	{name: "hash-type", in: inBack, status: unsupported},
	{name: "fullconn", in: inBack, status: unsupported},
	{name: "option httpchk", in: inBack, status: unsupported},
	{name: "option dontlognull", in: inFront, status: unsupported},
	{name: "option http-server-close", in: inProxies, status: unsupported},
	{name: "option httpclose", in: inProxies, status: unsupported},
	{name: "option http-keep-alive", in: inProxies, status: unsupported},
	{name: "option tcpka", in: inProxies, status: unsupported},
	{name: "log-format", in: inFront, status: unsupported},
	{name: "timeout tarpit", in: inProxies, status: unsupported},
	{name: "timeout client-fin", in: inFront, status: unsupported},
	{name: "timeout server-fin", in: inBack, status: unsupported},
	{name: "stats enable", in: inFront, parse: (*parser).statsPage},
	{name: "stats uri", in: inFront, parse: (*parser).statsPage},
	{name: "stats refresh", in: inFront, parse: (*parser).statsPage},
	{name: "stats auth", in: inProxies, status: unsupported},
	{name: "stats realm", in: inProxies, status: unsupported},
	{name: "stats admin", in: inProxies, status: unsupported},
	{name: "ca-base", in: inGlobal, parse: (*parser).sslBase},
	{name: "crt-base", in: inGlobal, parse: (*parser).sslBase},
	{name: "ssl-default-bind-ciphers", in: inGlobal, parse: (*parser).sslDefault},
	{name: "ssl-default-bind-ciphersuites", in: inGlobal, parse: (*parser).sslDefault},
	{name: "ssl-default-bind-curves", in: inGlobal, parse: (*parser).sslDefault},
	{name: "ssl-default-bind-options", in: inGlobal, parse: (*parser).sslDefaultOptions},
	{name: "ssl-default-server-ciphers", in: inGlobal, parse: (*parser).sslDefault},
	{name: "ssl-default-server-ciphersuites", in: inGlobal, parse: (*parser).sslDefault},
	{name: "ssl-default-server-options", in: inGlobal, parse: (*parser).sslDefaultOptions},
	{name: "ssl-server-verify", in: inGlobal, parse: (*parser).sslServerVerify},
	{name: "tune.ssl.default-dh-param", in: inGlobal, parse: (*parser).dhParam},
	{name: "ssl-dh-param-file", in: inGlobal, parse: (*parser).dhParam},
	{name: "ulimit-n", in: inGlobal, status: unsupported},
	{name: "spread-checks", in: inGlobal, status: unsupported},
}

// keywordIndex finds keywords by name. It is built once, in init, rather
// than by an initializer, because the table's parse functions use it
// (through find and keywordNames): Go does not allow such a cycle in
// package initialization.
var keywordIndex map[string][]*keyword

func init() {
	keywordIndex = make(map[string][]*keyword)
	for i := range keywords {
		kw := &keywords[i]
		keywordIndex[kw.name] = append(keywordIndex[kw.name], kw)
	}
}

// lineContexts are the places where a keyword starts a line, as opposed to
// an option of a bind, server or stats socket line.
const lineContexts = inGlobal | inProxies | inResolvers | inCache

// find returns the keyword of that name usable in the domain, preferring one
// allowed exactly here.
func find(name string, domain, here where) *keyword {
	var other *keyword
	for _, kw := range keywordIndex[name] {
		places := kw.in | kw.ignored
		switch {
		case places&here != 0:
			return kw
		case places&domain != 0 && other == nil:
			other = kw
		}
	}
	return other
}

// lookupKeyword finds the keyword a line starts with and how many of its
// words the keyword's name takes.
func lookupKeyword(words []string, here where) (*keyword, int) {
	if len(words) > 1 {
		if kw := find(words[0]+" "+words[1], lineContexts, here); kw != nil {
			return kw, 2
		}
	}
	if kw := find(words[0], lineContexts, here); kw != nil {
		return kw, 1
	}
	return nil, 0
}

// isFamily reports whether name is the first word of two-word keywords
// ("timeout", "option", "stats").
func isFamily(name string) bool {
	for full := range keywordIndex {
		if strings.HasPrefix(full, name+" ") {
			return true
		}
	}
	return false
}

// familyMembers lists the second words of the family usable here.
func familyMembers(name string, here where) []string {
	var out []string
	for _, n := range keywordNames(here) {
		if rest, ok := strings.CutPrefix(n, name+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// keywordNames lists the names of the implemented keywords usable here.
func keywordNames(here where) []string {
	return names(func(kw *keyword) bool { return kw.in&here != 0 })
}

// knownNames lists the names of the implemented keywords HAProxy accepts
// here, even if only to ignore them: the candidates of suggestions.
func knownNames(here where) []string {
	return names(func(kw *keyword) bool { return (kw.in|kw.ignored)&here != 0 })
}

func names(match func(*keyword) bool) []string {
	var out []string
	for name, kws := range keywordIndex {
		for _, kw := range kws {
			if kw.status != unsupported && match(kw) {
				out = append(out, name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
