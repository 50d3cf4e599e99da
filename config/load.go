// Package config reads HAProxy-style configuration files and compiles them
// into the Config model the master sends to its children.
//
// Loading has two steps. Parsing cuts each line into words (lex.go), finds
// the keyword in the one keyword table (keywords.go) and records what the
// line says in drafts of the sections. Compiling (compile.go) then applies
// what needs the whole configuration: the number of processes, ids,
// references between proxies, processes of proxies and binds, address
// resolution and certificate checks. Every problem found is reported, not
// just the first, each with its file and line.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/sluicelb/sluice/addr"
	"github.com/sluicelb/sluice/vfs"
)

// Diagnostic is one message about the configuration.
type Diagnostic struct {
	Pos     Pos    `json:"pos"`
	Warning bool   `json:"warning,omitempty"`
	Msg     string `json:"msg"`
}

// String returns "file:line: msg", or "file: msg" when the line is not
// known; warnings read "file:line: warning: msg".
func (d Diagnostic) String() string {
	where := d.Pos.String()
	if d.Warning {
		return where + ": warning: " + d.Msg
	}
	return where + ": " + d.Msg
}

// String returns "file:line", or "file" when the line is not known.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Errors is every error found in a configuration.
type Errors struct {
	Diags []Diagnostic
}

// Error returns the messages, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads the files (a directory means its *.cfg files in lexical
// order), in order, as one configuration, and compiles it. It returns every
// error found as an *Errors, and the warnings. cfg is nil when there is any
// error.
func Load(paths []string) (cfg *Config, warnings []Diagnostic, err error) {
	return defaultLoader().load(paths)
}

// LoadFS does what Load does, reading the configuration files, and
// checking the certificate paths they name, through fsys: the master loads
// a signed bundle's configuration from its verified in-memory files.
func LoadFS(fsys vfs.FS, paths []string) (cfg *Config, warnings []Diagnostic, err error) {
	ld := defaultLoader()
	ld.fsys = fsys
	ld.checkCrt = func(path string) error { return checkCrtFS(fsys, path) }
	return ld.load(paths)
}

// LoadBytes does what Load does for one in-memory file; name is used in
// messages.
func LoadBytes(name string, data []byte) (*Config, []Diagnostic, error) {
	return defaultLoader().loadBytes(name, data)
}

// NotActive lists the keywords used in c that parse but whose code has not
// landed yet, as warnings with their positions. A running sluice refuses a
// configuration using them; `sluice -c` reports them.
func (c *Config) NotActive() []Diagnostic {
	return append([]Diagnostic(nil), c.Inactive...)
}

// loader holds what loading needs from the outside world, so that tests
// and the fuzz target can replace it.
type loader struct {
	// resolve turns a host name into an address (HAProxy's init-addr libc).
	resolve func(context.Context, addr.Addr) (addr.Addr, error)
	// checkCrt checks that a certificate file or directory can be read.
	checkCrt func(path string) error
	// resolvConf is the file parse-resolv-conf reads.
	resolvConf string
	// fsys reads the configuration files.
	fsys vfs.FS
}

func defaultLoader() *loader {
	return &loader{
		resolve:    func(ctx context.Context, a addr.Addr) (addr.Addr, error) { return a.Resolve(ctx) },
		checkCrt:   checkCrt,
		resolvConf: "/etc/resolv.conf",
		fsys:       vfs.Disk{},
	}
}

// files is what reads the files a configuration names: the disk unless
// the loader was given another.
func (ld *loader) files() vfs.FS {
	if ld.fsys == nil {
		return vfs.Disk{}
	}
	return ld.fsys
}

func (ld *loader) load(paths []string) (*Config, []Diagnostic, error) {
	fsys := ld.files()
	p := newParser(ld)
	for _, path := range paths {
		files, err := expandPath(fsys, path)
		if err != nil {
			p.errorf(Pos{File: path}, "%v", fileError(err))
			continue
		}
		for _, f := range files {
			data, err := fsys.ReadFile(f)
			if err != nil {
				p.errorf(Pos{File: f}, "%v", fileError(err))
				continue
			}
			p.parseFile(f, data)
		}
	}
	return p.finish()
}

func (ld *loader) loadBytes(name string, data []byte) (*Config, []Diagnostic, error) {
	p := newParser(ld)
	p.parseFile(name, data)
	return p.finish()
}

// expandPath returns the file itself, or for a directory its *.cfg files
// in lexical order.
func expandPath(fsys vfs.FS, path string) ([]string, error) {
	fi, err := fsys.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := fsys.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries { // ReadDir sorts by name
		if strings.HasSuffix(e.Name(), ".cfg") && !e.IsDir() {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s has no *.cfg file", path)
	}
	return files, nil
}

// fileError drops the path from an error about a file, since messages
// start with it already.
func fileError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot %s: %w", pe.Op, pe.Err)
	}
	return err
}

// parseFile reads one file. As in HAProxy, a file starts outside any
// section and its end ends the section it was in.
func (p *parser) parseFile(name string, data []byte) {
	p.files = append(p.files, name)
	p.file, p.kind, p.cur = name, secNone, nil
	for i, line := range bytes.Split(data, []byte("\n")) {
		pos := Pos{File: name, Line: i + 1}
		words, err := splitLine(string(line), p.lookupVar(pos))
		if err != nil {
			p.errorf(pos, "%v", err)
			continue
		}
		if !validUTF8(words) {
			// The compiled configuration travels to the children as JSON,
			// which cannot carry other bytes.
			p.errorf(pos, "the line holds bytes that are not UTF-8 text (after escapes and variables)")
			continue
		}
		if len(words) > 0 {
			p.statement(pos, words)
		}
	}
	p.endSection()
}

// lookupVar returns the variables a line may use: the environment and
// HAProxy's pseudo-variables.
func (p *parser) lookupVar(pos Pos) func(string) (string, bool) {
	return func(name string) (string, bool) {
		switch name {
		case ".FILE":
			return pos.File, true
		case ".LINE":
			return fmt.Sprint(pos.Line), true
		case ".SECTION":
			return p.sectionVar(), true
		}
		if strings.HasPrefix(name, ".") {
			return "", false
		}
		return os.LookupEnv(name)
	}
}

// finish compiles what was parsed and returns the result.
func (p *parser) finish() (*Config, []Diagnostic, error) {
	cfg := p.compile()
	p.errs, p.warns = dedupe(p.errs), dedupe(p.warns)
	sortDiags(p.errs, p.files)
	sortDiags(p.warns, p.files)
	if len(p.errs) > 0 {
		return nil, p.warns, &Errors{Diags: p.errs}
	}
	return cfg, p.warns, nil
}

// sortDiags orders messages by file (in the order read) and line.
func sortDiags(diags []Diagnostic, files []string) {
	order := make(map[string]int)
	for i, f := range files {
		if _, ok := order[f]; !ok {
			order[f] = i
		}
	}
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Pos, diags[j].Pos
		if a.File != b.File {
			return order[a.File] < order[b.File]
		}
		return a.Line < b.Line
	})
}

// checkCrt checks that a certificate file can be opened, or that a
// certificate directory can be listed and holds at least one file. Parsing
// the certificates is the TLS code's job.
func checkCrt(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return checkCrtDir(vfs.Disk{}, path)
	}
	// O_NONBLOCK so that a FIFO named by mistake cannot hang the load.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkCrtFS is checkCrt for files read through fsys.
func checkCrtFS(fsys vfs.FS, path string) error {
	fi, err := fsys.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return checkCrtDir(fsys, path)
	}
	return nil
}

// checkCrtDir checks that a certificate directory holds a file.
func checkCrtDir(fsys vfs.FS, path string) error {
	entries, err := fsys.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			return nil
		}
	}
	return fmt.Errorf("directory %s holds no certificate file", path)
}

func validUTF8(words []string) bool {
	for _, w := range words {
		if !utf8.ValidString(w) {
			return false
		}
	}
	return true
}
