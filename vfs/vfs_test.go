package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMem(t *testing.T) {
	m := NewMem(map[string][]byte{
		"/etc/sluice/sluice.cfg":      []byte("global\n"),
		"/etc/sluice/certs/b.pem":     []byte("b"),
		"/etc/sluice/certs/a.pem":     []byte("a"),
		"/etc/sluice/certs/old/x.pem": []byte("x"),
		"rel/site.pem":                []byte("r"),
	})
	names := func(entries []fs.DirEntry) []string {
		var out []string
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() {
				n += "/"
			}
			out = append(out, n)
		}
		return out
	}
	tests := []struct {
		dir  string
		want []string
	}{
		{"/etc/sluice/certs", []string{"a.pem", "b.pem", "old/"}},
		{"/etc/sluice/certs/", []string{"a.pem", "b.pem", "old/"}},
		{"/etc/sluice", []string{"certs/", "sluice.cfg"}},
		{"rel", []string{"site.pem"}},
		{".", []string{"rel/"}},
	}
	for _, tt := range tests {
		entries, err := m.ReadDir(tt.dir)
		if err != nil {
			t.Fatalf("ReadDir(%s): %v", tt.dir, err)
		}
		if got := names(entries); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ReadDir(%s) = %v, want %v", tt.dir, got, tt.want)
		}
	}
	if data, err := m.ReadFile("/etc/sluice/../sluice/certs/a.pem"); err != nil || string(data) != "a" {
		t.Errorf("ReadFile unclean path: %q %v", data, err)
	}
	if _, err := m.ReadFile("/etc/sluice/missing.pem"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile missing: %v, want ErrNotExist", err)
	}
	if _, err := m.ReadFile("/etc/sluice/certs"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if fi, err := m.Stat("/etc/sluice/certs"); err != nil || !fi.IsDir() {
		t.Errorf("Stat dir: %v %v", fi, err)
	}
	if fi, err := m.Stat("/etc/sluice/sluice.cfg"); err != nil || !fi.Mode().IsRegular() || fi.Size() != 7 {
		t.Errorf("Stat file: %v %v", fi, err)
	}
	if _, err := m.Stat("/etc/sluic"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a name prefix: %v, want ErrNotExist", err)
	}
}

func TestRecorder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.cfg")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := NewRecorder(Disk{})
	if _, err := r.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("read a missing file")
	}
	if got := r.Read(); len(got) != 1 || string(got[path]) != "x" {
		t.Fatalf("recorded %v", got)
	}
}
