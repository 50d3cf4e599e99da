package appliance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicelb/sluice/bundle"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/vfs"
)

// Source is where the master's configuration comes from, at start and at
// every reload: configuration files on disk (-f), or a signed bundle (-B).
//
// In bundle mode the configuration and every file it names (certificates,
// crt-lists, CA and CRL files, ticket keys, OCSP responses) are read from
// the verified bundle's in-memory files, never from the disk, so that
// nothing unsigned gets in. The -f files then only name the trusted keys
// with config-signing-key: they are local files of the machine, read again
// at each reload so that a key can be added or retired.
type Source struct {
	Files  []string
	Bundle string
	// StateDir, when set, keeps the sequence and digest of the last bundle
	// accepted (file bundle-sequence), so that a replay is refused at start
	// too, after a restart or a reboot. The unit's StateDirectory= gives it.
	StateDir string
}

// stateFile is the file in StateDir that remembers the last bundle.
const stateFile = "bundle-sequence"

// Loaded is a configuration read from its Source and checked.
type Loaded struct {
	Source Source
	Config *config.Config
	// FS reads the files the configuration names: the disk, or the
	// bundle's files.
	FS vfs.FS
	// Bundle is the verified bundle, nil when read from files.
	Bundle *bundle.Bundle
}

// describe names the source in logs.
func (s Source) describe() string {
	if s.Bundle != "" {
		return "bundle " + s.Bundle
	}
	return strings.Join(s.Files, ", ")
}

// Load reads and checks the configuration. running is the bundle in
// force, whose sequence a new bundle must not go back from; nil at start.
// Warnings are returned even with an error.
func (s Source) Load(running *bundle.Bundle, now time.Time) (*Loaded, []config.Diagnostic, error) {
	if s.Bundle == "" {
		cfg, warnings, err := config.Load(s.Files)
		if err != nil {
			return nil, warnings, err
		}
		if keys := cfg.Global.ConfigSigningKeys; len(keys) > 0 {
			return nil, warnings, &config.Errors{Diags: []config.Diagnostic{{Pos: keys[0].Pos,
				Msg: "config-signing-key: this machine only accepts configuration from bundles signed by this key: run with -B BUNDLE (made by 'sluice bundle sign'), not from plain files"}}}
		}
		return &Loaded{Source: s, Config: cfg, FS: vfs.Disk{}}, warnings, nil
	}

	if len(s.Files) == 0 {
		return nil, nil, errors.New("-B needs -f FILE: the local configuration whose config-signing-key lines name the keys the bundle must be signed by")
	}
	trust, warnings, err := config.Load(s.Files)
	if err != nil {
		return nil, warnings, err
	}
	keys, err := readSigningKeys(trust)
	if err != nil {
		return nil, warnings, err
	}
	if len(keys) == 0 {
		return nil, warnings, fmt.Errorf("-B %s: %s has no config-signing-key line: with -B, the -f files name the keys the bundle must be signed by", s.Bundle, strings.Join(s.Files, ", "))
	}
	if len(trust.Proxies) > 0 {
		return nil, warnings, fmt.Errorf("-B %s: %s holds proxies ('%s'): with -B the configuration comes from the bundle, and the -f files only name the trusted keys (config-signing-key)", s.Bundle, strings.Join(s.Files, ", "), trust.Proxies[0].Name)
	}
	if running == nil {
		if running, err = s.lastBundle(); err != nil {
			return nil, warnings, err
		}
	}
	b, err := readBundle(s.Bundle, keys, running, now)
	if err != nil {
		return nil, warnings, err
	}
	fsys := vfs.NewMem(b.FileMap())
	cfg, bundleWarnings, err := config.LoadFS(fsys, b.Config)
	warnings = append(warnings, bundleWarnings...)
	if err != nil {
		return nil, warnings, err
	}
	if k := cfg.Global.ConfigSigningKeys; len(k) > 0 {
		return nil, warnings, &config.Errors{Diags: []config.Diagnostic{{Pos: k[0].Pos,
			Msg: fmt.Sprintf("config-signing-key in bundle %s: the trusted keys are named by the machine's own -f files (%s), not by the bundle they check", s.Bundle, strings.Join(s.Files, ", "))}}}
	}
	return &Loaded{Source: s, Config: cfg, FS: fsys, Bundle: b}, warnings, nil
}

// readBundle reads and verifies the bundle at path, and refuses a replay:
// a sequence older than the running bundle's, or the same sequence with
// other contents.
func readBundle(path string, keys []*bundle.PublicKey, running *bundle.Bundle, now time.Time) (*bundle.Bundle, error) {
	data, err := bundle.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, err := bundle.Verify(data, keys, now)
	if err != nil {
		return nil, fmt.Errorf("bundle %s refused: %w", path, err)
	}
	if running != nil {
		switch {
		case b.Sequence < running.Sequence:
			return nil, fmt.Errorf("bundle %s refused: sequence %d is older than the running bundle's %d (a replay)", path, b.Sequence, running.Sequence)
		case b.Sequence == running.Sequence && b.Digest != running.Digest:
			return nil, fmt.Errorf("bundle %s refused: sequence %d is the running bundle's, with other contents: sign a change with a higher sequence", path, b.Sequence)
		}
	}
	return b, nil
}

// lastBundle returns the sequence and digest of the last bundle accepted,
// as remembered in StateDir; nil when nothing is remembered.
func (s Source) lastBundle() (*bundle.Bundle, error) {
	if s.StateDir == "" {
		return nil, nil
	}
	path := filepath.Join(s.StateDir, stateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the last bundle's sequence: %w", err)
	}
	var b bundle.Bundle
	if _, err := fmt.Sscanf(string(data), "%d %s", &b.Sequence, &b.Digest); err != nil {
		return nil, fmt.Errorf("%s: want \"SEQUENCE DIGEST\": %w (delete it to accept any bundle)", path, err)
	}
	return &b, nil
}

// remember records b as the last bundle accepted, in StateDir.
func (s Source) remember(b *bundle.Bundle) error {
	if s.StateDir == "" || b == nil {
		return nil
	}
	path := filepath.Join(s.StateDir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %s\n", b.Sequence, b.Digest), 0o644); err != nil {
		return fmt.Errorf("remember the bundle's sequence: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("remember the bundle's sequence: %w", err)
	}
	return nil
}

// readSigningKeys reads the public keys the config-signing-key lines name,
// from the disk: the keys that check bundles are never taken from one.
func readSigningKeys(cfg *config.Config) ([]*bundle.PublicKey, error) {
	var keys []*bundle.PublicKey
	var errs []config.Diagnostic
	for _, k := range cfg.Global.ConfigSigningKeys {
		pub, err := bundle.ReadPublicKey(k.Path)
		if err != nil {
			errs = append(errs, config.Diagnostic{Pos: k.Pos, Msg: "config-signing-key: " + err.Error()})
			continue
		}
		keys = append(keys, pub)
	}
	if len(errs) > 0 {
		return nil, &config.Errors{Diags: errs}
	}
	return keys, nil
}

// Collect reads the configuration files and every file they name from the
// disk, as a start would, and returns them by path with the configuration
// files' names in load order: what `sluice bundle sign` puts in a bundle.
func Collect(files []string) (configFiles []string, contents map[string][]byte, err error) {
	rec := vfs.NewRecorder(vfs.Disk{})
	cfg, _, err := config.LoadFS(rec, files)
	if err != nil {
		return nil, nil, err
	}
	if bad := cfg.NotActive(); len(bad) > 0 {
		return nil, nil, &config.Errors{Diags: bad}
	}
	if len(cfg.Global.ConfigSigningKeys) > 0 {
		return nil, nil, &config.Errors{Diags: []config.Diagnostic{{Pos: cfg.Global.ConfigSigningKeys[0].Pos,
			Msg: "config-signing-key does not go in a bundle: the machines name the keys they trust in their own -f files"}}}
	}
	if _, _, err := readTLS(cfg, rec); err != nil {
		return nil, nil, err
	}
	names := make([]string, len(cfg.Files))
	for i, f := range cfg.Files {
		names[i] = filepath.Clean(f)
	}
	return names, rec.Read(), nil
}
