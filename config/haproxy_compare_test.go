package config

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompareWithHAProxy runs HAProxy 2.6's configuration check and Load on
// every file of testdata/compare and asserts that they agree on whether
// the file is valid, and that the file's name (ok-* or bad-*) says the
// same. Sluice's every error must carry file:line, even where HAProxy's
// message has no line.
func TestCompareWithHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("haproxy is not on PATH, and CI is set")
		}
		t.Skip("haproxy is not on PATH")
	}
	files, err := filepath.Glob("testdata/compare/*.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var valid, invalid int
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "ok-") {
			valid++
		} else {
			invalid++
		}
	}
	if len(files) < 30 || invalid < len(files)/2 {
		t.Fatalf("testdata/compare has %d files, %d invalid: want at least 30, half invalid", len(files), invalid)
	}

	dir := t.TempDir()
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".cfg"), func(t *testing.T) {
			path := templateCompareFile(t, f, dir)
			wantValid := strings.HasPrefix(name, "ok-")

			out, err := exec.Command(haproxy, "-c", "-f", path).CombinedOutput()
			var exit *exec.ExitError
			haValid := err == nil
			if err != nil && (!errors.As(err, &exit) || exit.ExitCode() != 1) {
				t.Fatalf("haproxy -c: %v\n%s", err, out)
			}

			_, _, loadErr := Load([]string{path})
			if haValid != (loadErr == nil) {
				t.Errorf("haproxy valid=%v, sluice valid=%v\nhaproxy:\n%s\nsluice: %v", haValid, loadErr == nil, out, loadErr)
			}
			if haValid != wantValid {
				t.Errorf("haproxy valid=%v, but the file is named %s\n%s", haValid, name, out)
			}
			var errs *Errors
			if loadErr != nil && !errors.As(loadErr, &errs) {
				t.Fatalf("Load error is %T, not *Errors", loadErr)
			}
			if errs != nil {
				lineRE := regexp.MustCompile("^" + regexp.QuoteMeta(path) + `:[0-9]+: `)
				for _, d := range errs.Diags {
					if !lineRE.MatchString(d.String()) {
						t.Errorf("error without file:line: %s", d)
					}
				}
			}
		})
	}
}

// templateCompareFile writes a copy of a testdata/compare file with its
// certificate placeholders replaced by absolute paths, so that haproxy and
// sluice read the same certificate from any working directory.
func templateCompareFile(t *testing.T, src, dir string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := filepath.Abs("testdata/site.pem")
	if err != nil {
		t.Fatal(err)
	}
	certDir, err := filepath.Abs("testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("@CERTDIR@", certDir, "@CERT@", cert).Replace(string(data))
	path := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
