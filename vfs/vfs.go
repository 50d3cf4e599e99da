// Package vfs is the small file-reading interface through which the
// configuration, the certificates and every other file a configuration names
// are read, so that the master can take them from the disk or from the
// verified in-memory files of a signed bundle, and never mix the two.
package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// FS reads files by the paths a configuration names (absolute or relative
// to the current directory).
type FS interface {
	ReadFile(name string) ([]byte, error)
	ReadDir(name string) ([]fs.DirEntry, error)
	Stat(name string) (fs.FileInfo, error)
}

// Disk reads the real file system.
type Disk struct{}

func (Disk) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (Disk) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (Disk) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }

// Mem is a read-only set of files in memory, keyed by cleaned path;
// directories are the paths' parents.
type Mem struct {
	files map[string][]byte
}

// NewMem returns a Mem holding files (path to contents).
func NewMem(files map[string][]byte) *Mem {
	m := &Mem{files: make(map[string][]byte, len(files))}
	for p, data := range files {
		m.files[filepath.Clean(p)] = data
	}
	return m
}

// Files returns the paths held, sorted.
func (m *Mem) Files() []string {
	out := make([]string, 0, len(m.files))
	for p := range m.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (m *Mem) ReadFile(name string) ([]byte, error) {
	data, ok := m.files[filepath.Clean(name)]
	if !ok {
		if m.isDir(name) {
			return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrInvalid}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), data...), nil
}

func (m *Mem) Stat(name string) (fs.FileInfo, error) {
	clean := filepath.Clean(name)
	if data, ok := m.files[clean]; ok {
		return memInfo{name: filepath.Base(clean), size: int64(len(data))}, nil
	}
	if m.isDir(clean) {
		return memInfo{name: filepath.Base(clean), dir: true}, nil
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

// ReadDir lists the files and subdirectories directly under name, sorted by
// name as os.ReadDir does.
func (m *Mem) ReadDir(name string) ([]fs.DirEntry, error) {
	dir := filepath.Clean(name)
	if !m.isDir(dir) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	seen := make(map[string]fs.DirEntry)
	for p, data := range m.files {
		rest, ok := under(dir, p)
		if !ok {
			continue
		}
		first, _, sub := strings.Cut(rest, string(filepath.Separator))
		if sub {
			seen[first] = fs.FileInfoToDirEntry(memInfo{name: first, dir: true})
		} else {
			seen[first] = fs.FileInfoToDirEntry(memInfo{name: first, size: int64(len(data))})
		}
	}
	out := make([]fs.DirEntry, 0, len(seen))
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (m *Mem) isDir(dir string) bool {
	for p := range m.files {
		if _, ok := under(dir, p); ok {
			return true
		}
	}
	return false
}

// under returns p relative to dir when p is inside dir.
func under(dir, p string) (string, bool) {
	if dir == "." {
		if filepath.IsAbs(p) || strings.HasPrefix(p, "..") {
			return "", false
		}
		return p, true
	}
	prefix := dir
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	rest, ok := strings.CutPrefix(p, prefix)
	return rest, ok && rest != ""
}

type memInfo struct {
	name string
	size int64
	dir  bool
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.dir }
func (i memInfo) Sys() any           { return nil }

// Recorder reads through another FS and keeps a copy of every file read,
// which is how `sluice bundle sign` learns every file a configuration needs.
type Recorder struct {
	FS FS
	mu sync.Mutex
	// read holds the files read successfully, by the path asked for.
	read map[string][]byte
}

// NewRecorder returns a Recorder reading through fsys.
func NewRecorder(fsys FS) *Recorder {
	return &Recorder{FS: fsys, read: make(map[string][]byte)}
}

func (r *Recorder) ReadFile(name string) ([]byte, error) {
	data, err := r.FS.ReadFile(name)
	if err == nil {
		r.mu.Lock()
		r.read[filepath.Clean(name)] = data
		r.mu.Unlock()
	}
	return data, err
}

func (r *Recorder) ReadDir(name string) ([]fs.DirEntry, error) { return r.FS.ReadDir(name) }
func (r *Recorder) Stat(name string) (fs.FileInfo, error)      { return r.FS.Stat(name) }

// Read returns a copy of the files read so far, by path.
func (r *Recorder) Read() map[string][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string][]byte, len(r.read))
	for p, data := range r.read {
		out[p] = data
	}
	return out
}
