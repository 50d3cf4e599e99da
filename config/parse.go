package config

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// sectionKind is the kind of section a line is in.
type sectionKind int

const (
	secNone        sectionKind = iota // before the first section of a file
	secGlobal                         // global
	secDefaults                       // defaults [NAME]
	secFrontend                       // frontend NAME
	secListen                         // listen NAME
	secBackend                        // backend NAME
	secResolvers                      // resolvers NAME
	secCache                          // cache NAME
	secUnsupported                    // a HAProxy section sluice does not read
)

var sectionNames = map[string]sectionKind{
	"global":    secGlobal,
	"defaults":  secDefaults,
	"frontend":  secFrontend,
	"listen":    secListen,
	"backend":   secBackend,
	"resolvers": secResolvers,
	"cache":     secCache,
}

// unsupportedSections are HAProxy's other sections: they are refused as a
// whole, with one message, and their lines are skipped.
var unsupportedSections = []string{
	"peers", "userlist", "mailers", "program", "http-errors", "ring",
	"log-forward", "fcgi-app", "dynamic-update", "crt-store", "traces",
}

func (k sectionKind) String() string {
	for name, kind := range sectionNames {
		if kind == k {
			return name
		}
	}
	return "?"
}

// where is a set of places a keyword may be used.
type where uint16

const (
	inGlobal      where = 1 << iota
	inDefaults          // a defaults section
	inFrontend          // a frontend section
	inListen            // a listen section
	inBackend           // a backend section
	onBind              // an option of a bind line
	onServer            // an option of a server line
	onStatsSocket       // an option of a stats socket line
	inResolvers         // a resolvers section
	inCache             // a cache section

	inProxies = inDefaults | inFrontend | inListen | inBackend
	inFront   = inDefaults | inFrontend | inListen // frontend capability
	inBack    = inDefaults | inListen | inBackend  // backend capability
)

func (k sectionKind) where() where {
	switch k {
	case secGlobal:
		return inGlobal
	case secDefaults:
		return inDefaults
	case secFrontend:
		return inFrontend
	case secListen:
		return inListen
	case secBackend:
		return inBackend
	case secResolvers:
		return inResolvers
	case secCache:
		return inCache
	}
	return 0
}

// stmt is one statement: a configuration line, or one option of a bind,
// server or stats socket line.
type stmt struct {
	pos  Pos
	name string   // the keyword, e.g. "timeout connect"
	args []string // the words after the keyword
	neg  bool     // written with the "no" prefix
}

// parser reads the lines of every file into drafts, which compile turns
// into the Config.
type parser struct {
	ld *loader

	errs, warns, inactive []Diagnostic
	files                 []string

	file    string
	kind    sectionKind // the section being read
	secName string      // its name

	global    globalDraft
	defaults  *proxyDraft              // the defaults that apply to the next proxy
	named     map[string][]*proxyDraft // named defaults sections, for "from"
	proxies   []*proxyDraft
	resolvers []*Resolvers
	caches    []*Cache

	cur    *proxyDraft // the proxy or defaults section being read
	curRes *Resolvers  // the resolvers section being read
	// curCache is the cache section being read.
	curCache *Cache
	// triedNS are the resolvers sections with nameserver lines, valid or
	// not.
	triedNS map[*Resolvers]bool
	// The line whose options are being read.
	bindLine   *bindDraft
	serverLine *Server
	sock       *StatsSocket
}

func newParser(ld *loader) *parser {
	return &parser{
		ld:       ld,
		named:    make(map[string][]*proxyDraft),
		triedNS:  make(map[*Resolvers]bool),
		defaults: builtinDefaults(),
		global:   newGlobalDraft(),
	}
}

func (p *parser) errorf(pos Pos, format string, args ...any) {
	p.errs = append(p.errs, Diagnostic{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(pos Pos, format string, args ...any) {
	p.warns = append(p.warns, Diagnostic{Pos: pos, Warning: true, Msg: fmt.Sprintf(format, args...)})
}

// sectionLabel names the current section in messages: "'global'",
// "'listen worker'".
func (p *parser) sectionLabel() string {
	if p.secName == "" {
		return fmt.Sprintf("'%s'", p.kind)
	}
	return fmt.Sprintf("'%s %s'", p.kind, p.secName)
}

// sectionVar is the value of the .SECTION pseudo-variable: the section's
// name, or its kind when it has none.
func (p *parser) sectionVar() string {
	switch {
	case p.kind == secNone:
		return ""
	case p.secName != "":
		return p.secName
	default:
		return p.kind.String()
	}
}

// statement handles one line.
func (p *parser) statement(pos Pos, words []string) {
	if kind, ok := sectionNames[words[0]]; ok {
		p.endSection()
		p.startSection(pos, kind, words[0], words[1:])
		return
	}
	if slices.Contains(unsupportedSections, words[0]) {
		p.endSection()
		p.kind, p.secName, p.cur = secUnsupported, "", nil
		p.errorf(pos, "section '%s' is not supported", words[0])
		return
	}
	switch p.kind {
	case secNone:
		p.errorf(pos, "unknown keyword '%s' out of section%s", words[0], didYouMean(words[0], sectionList()))
		return
	case secUnsupported:
		return // reported once, at the section line
	}

	s := &stmt{pos: pos}
	if words[0] == "no" && len(words) > 1 {
		s.neg, words = true, words[1:]
	}
	here := p.kind.where()
	kw, n := lookupKeyword(words, here)
	if kw == nil {
		p.errorf(pos, "%s", p.unknown(words, here))
		return
	}
	s.name, s.args = kw.name, words[n:]
	if msg := p.misplaced(kw, here); msg != "" {
		p.errorf(pos, "%s", msg)
		return
	}
	if kw.ignored&here != 0 {
		p.warnf(pos, "'%s' ignored because %s has no %s capability", kw.name, p.cur.label(), missingCap(p.kind))
		return
	}
	if s.neg && !kw.neg {
		p.errorf(pos, "'no' is not supported for '%s'", kw.name)
		return
	}
	if err := kw.parse(p, s); err != nil {
		p.errorf(pos, "%v", err)
		return
	}
	if kw.status == notActive {
		p.inactive = append(p.inactive, Diagnostic{Pos: pos, Warning: true, Msg: fmt.Sprintf("'%s' is parsed but not active yet", kw.name)})
	}
}

// misplaced says why a known keyword cannot be used here, or "".
func (p *parser) misplaced(kw *keyword, here where) string {
	switch {
	case kw.status == unsupported:
		return fmt.Sprintf("'%s' is not supported", kw.name)
	case kw.in&here != 0 || kw.ignored&here != 0:
		return ""
	case here == inDefaults && kw.in&inProxies != 0:
		return fmt.Sprintf("'%s' not allowed in 'defaults' section", kw.name)
	case here&(inFrontend|inBackend) != 0 && kw.in&inListen != 0:
		return fmt.Sprintf("'%s' not allowed because %s has no %s capability", kw.name, p.cur.label(), missingCap(p.kind))
	case kw.in&inResolvers != 0:
		return fmt.Sprintf("'%s' not allowed in %s section (it belongs in 'resolvers' sections)", kw.name, p.sectionLabel())
	case kw.in&inCache != 0:
		return fmt.Sprintf("'%s' not allowed in %s section (it belongs in 'cache' sections)", kw.name, p.sectionLabel())
	case kw.in&inGlobal != 0:
		return fmt.Sprintf("'%s' not allowed in %s section (it belongs in the 'global' section)", kw.name, p.sectionLabel())
	default:
		return fmt.Sprintf("'%s' not allowed in %s section (it belongs in proxy sections)", kw.name, p.sectionLabel())
	}
}

// missingCap names what a frontend or backend lacks to use a keyword of
// the other side.
func missingCap(k sectionKind) string {
	if k == secFrontend {
		return "backend"
	}
	return "frontend"
}

// unknown is the message for words that are no keyword.
func (p *parser) unknown(words []string, here where) string {
	name := words[0]
	members := familyMembers(name, here)
	switch {
	case len(words) == 1 && len(members) > 0:
		return fmt.Sprintf("'%s' expects one of: %s", name, strings.Join(members, ", "))
	case len(words) > 1 && isFamily(name):
		name += " " + words[1]
	}
	return fmt.Sprintf("unknown keyword '%s' in %s section%s", name, p.sectionLabel(), didYouMean(name, knownNames(here)))
}

func sectionList() []string {
	names := make([]string, 0, len(sectionNames))
	for name := range sectionNames {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// startSection handles a section line: "global", "defaults [NAME] [from
// NAME]", "frontend|backend|listen NAME [from NAME]", "resolvers NAME".
func (p *parser) startSection(pos Pos, kind sectionKind, word string, args []string) {
	p.kind, p.secName, p.cur = kind, "", nil
	switch kind {
	case secGlobal:
		if len(args) > 0 {
			p.errorf(pos, "'global' takes no argument (got '%s')", args[0])
		}
		return
	case secResolvers:
		p.startResolvers(pos, args)
		return
	case secCache:
		p.startCache(pos, args)
		return
	}

	name, from, err := sectionArgs(word, kind, args)
	if err != nil {
		p.errorf(pos, "%v", err)
	}
	p.secName = name
	// A proxy starts from the latest defaults section; a defaults section
	// starts from HAProxy's defaults. "from" names another starting point.
	base := p.defaults
	switch {
	case from != "":
		base = p.namedDefaults(pos, kind, name, from)
	case kind == secDefaults:
		base = builtinDefaults()
	}
	d := base.inherit()
	d.kind, d.Name, d.Pos = kind, name, pos
	d.Frontend = kind == secFrontend || kind == secListen
	d.Backend = kind == secBackend || kind == secListen
	p.cur = d
	if kind == secDefaults {
		// A defaults section replaces the previous one for what follows.
		p.defaults = d
		if name != "" {
			p.named[name] = append(p.named[name], d)
		}
		return
	}
	if c := invalidNameChar(name); c != 0 {
		p.errorf(pos, "character '%c' is not permitted in %s name '%s'", c, kind, name)
	}
	if name != "" {
		// A section without a name is reported above; its lines are still
		// checked, but it does not become a proxy.
		p.proxies = append(p.proxies, d)
	}
}

// namedSection reads the "NAME" of a section that takes only a name
// (cache, resolvers) and reports whether it is usable. An extra word is
// reported but the name is kept.
func (p *parser) namedSection(pos Pos, kind string, args []string) (string, bool) {
	switch {
	case len(args) == 0:
		p.errorf(pos, "'%s' expects a name", kind)
		return "", false
	case len(args) > 1:
		p.errorf(pos, "'%s %s': unexpected '%s'", kind, args[0], args[1])
	}
	name := args[0]
	p.secName = name
	if c := invalidNameChar(name); c != 0 {
		p.errorf(pos, "character '%c' is not permitted in %s name '%s'", c, kind, name)
		return name, false
	}
	return name, true
}

// sectionArgs reads "NAME [from DEFAULTS]" after a proxy or defaults
// section keyword.
func sectionArgs(word string, kind sectionKind, args []string) (name, from string, err error) {
	if len(args) > 0 && args[0] != "from" {
		name, args = args[0], args[1:]
	}
	if name == "" && kind != secDefaults {
		return "", "", fmt.Errorf("'%s' expects a name", word)
	}
	switch {
	case len(args) == 0:
		return name, "", nil
	case args[0] == "from" && len(args) == 2:
		return name, args[1], nil
	case args[0] == "from" && len(args) == 1:
		return name, "", fmt.Errorf("'%s %s from' expects the name of a defaults section", word, name)
	default:
		return name, "", fmt.Errorf("'%s %s': unexpected '%s' (expected nothing or 'from' and the name of a defaults section)", word, name, strings.Join(args, " "))
	}
}

// namedDefaults finds the defaults section a "from NAME" designates, among
// those already read.
func (p *parser) namedDefaults(pos Pos, kind sectionKind, name, from string) *proxyDraft {
	who := fmt.Sprintf("%s '%s'", kind, name)
	if name == "" {
		who = "defaults section"
	}
	found := p.named[from]
	switch {
	case len(found) == 0:
		p.errorf(pos, "defaults section '%s' not found for %s", from, who)
		return p.defaults
	case len(found) > 1:
		p.errorf(pos, "ambiguous defaults section name '%s' referenced by %s: it is defined at %s and %s", from, who, found[0].Pos, found[1].Pos)
	}
	if c := invalidNameChar(from); c != 0 {
		p.errorf(pos, "character '%c' is not permitted in the name of defaults section '%s', which %s references", c, from, who)
	}
	return found[0]
}

// endSection is called when a section ends: at the next section line or at
// the end of a file.
func (p *parser) endSection() {
	p.kind, p.secName, p.cur, p.curRes, p.curCache = secNone, "", nil, nil, nil
}
