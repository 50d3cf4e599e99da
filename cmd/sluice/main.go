// Command sluice is the Sluice load balancer: a two-tier TLS-offload
// dispatcher that reads HAProxy's configuration dialect.
//
//	sluice                     run the built-in demo on https://127.0.0.1:8443/
//	sluice -f FILE [-f FILE]   run a configuration (files or directories of *.cfg)
//	sluice -c -f FILE          check a configuration and exit
//	sluice -S PATH -f FILE     also answer the master CLI on PATH (reload, show proc)
//	sluice -f TRUST -B BUNDLE  run a signed configuration bundle (keys named in TRUST)
//	sluice bundle keygen|sign|verify   make, sign and check bundles
//	sluice selfsigned -o FILE HOST...  write a self-signed certificate bundle
//	sluice -v                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelb/sluice/appliance"
	"github.com/sluicelb/sluice/config"
	"github.com/sluicelb/sluice/vfs"
	"github.com/sluicelb/sluice/worker"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type fileList []string

func (f *fileList) String() string     { return fmt.Sprint(*f) }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	if n := os.Getenv(appliance.ChildEnv); n != "" {
		os.Exit(runChild(n))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "bundle":
			return runBundle(args[1:])
		case "selfsigned":
			return runSelfSigned(args[1:])
		}
	}
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	var files fileList
	fs.Var(&files, "f", "configuration file or directory of *.cfg files (repeatable)")
	checkOnly := fs.Bool("c", false, "check the configuration and exit")
	showVersion := fs.Bool("v", false, "print the version and exit")
	debug := fs.Bool("d", false, "debug logging")
	quiet := fs.Bool("q", false, "quiet: only warnings and errors")
	masterCLI := fs.String("S", "", "master CLI socket `PATH` (unix socket): reload, show proc")
	bundlePath := fs.String("B", "", "run the signed configuration `BUNDLE`; the -f files name the trusted keys (config-signing-key)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sluice: unexpected argument %q (configuration files go after -f)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Printf("Sluice version %s\n", version)
		return 0
	}
	log := newLogger(*debug, *quiet)
	appliance.Version = version
	if strings.Contains(*masterCLI, ",") {
		fmt.Fprintf(os.Stderr, "sluice: -S %s: bind options on the master socket are not supported; give a unix socket path\n", *masterCLI)
		return 2
	}

	src := appliance.Source{Files: files, Bundle: *bundlePath}
	if dirs := os.Getenv("STATE_DIRECTORY"); dirs != "" && src.Bundle != "" {
		// systemd's StateDirectory=: remember the last bundle across restarts.
		src.StateDir, _, _ = strings.Cut(dirs, ":")
	}
	if *checkOnly {
		return check(src)
	}
	if src.Bundle != "" && src.StateDir == "" {
		log.Warn("no $STATE_DIRECTORY: the last bundle's sequence is kept in memory only, so after a restart an older signed bundle would be accepted again (run under the appliance's systemd unit, or set STATE_DIRECTORY)", "bundle", src.Bundle)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var ld *appliance.Loaded
	if len(files) == 0 && src.Bundle == "" {
		cfg, err := appliance.Demo(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sluice: demo: %v\n", err)
			return 1
		}
		ld = &appliance.Loaded{Config: cfg, FS: vfs.Disk{}}
		fmt.Printf("Sluice demo: two-tier TLS offload (1 dispatcher, 2 TLS workers) on https://%s/\n", appliance.DemoAddr)
		fmt.Printf("Try it:  curl -k https://%s/\n", appliance.DemoAddr)
		fmt.Println("Stop it with Ctrl-C. Run your own configuration with: sluice -f haproxy.cfg")
	} else {
		l, warnings, err := src.Load(nil, time.Now())
		for _, w := range warnings {
			log.Warn(w.String())
		}
		if err != nil {
			printErrors(err)
			return 1
		}
		ld = l
		if ld.Config.Global.Daemon {
			parent, err := appliance.Daemonize()
			if err != nil {
				fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
				return 1
			}
			if parent {
				return 0
			}
		}
	}

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice: find own binary: %v\n", err)
		return 1
	}
	m, err := appliance.NewLoaded(ctx, ld, exe, log)
	if err != nil {
		printErrors(err)
		return 1
	}
	if *masterCLI != "" {
		if err := m.ServeCLI(ctx, strings.TrimPrefix(*masterCLI, "unix@")); err != nil {
			fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
			return 1
		}
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
		return 1
	}
	return 0
}

// check is `sluice -c`: every error on stderr, exit 1; or exit 0 with
// HAProxy's words. It loads the configuration as a start would (files, or
// a bundle verified with the keys the files name), so it gives the same
// verdict.
func check(src appliance.Source) int {
	if len(src.Files) == 0 {
		fmt.Fprintln(os.Stderr, "sluice: -c needs at least one -f FILE")
		return 2
	}
	ld, warnings, err := src.Load(nil, time.Now())
	for _, w := range warnings {
		fmt.Fprintln(os.Stderr, w.String())
	}
	if err == nil {
		for _, d := range ld.Config.NotActive() {
			fmt.Fprintln(os.Stderr, d.String())
		}
		var tlsWarnings []string
		tlsWarnings, err = appliance.CheckLoaded(ld)
		for _, w := range tlsWarnings {
			fmt.Fprintln(os.Stderr, "warning: "+w)
		}
	}
	if err != nil {
		printErrors(err)
		return 1
	}
	if ld.Bundle != nil {
		fmt.Printf("Bundle %s (sequence %d, signed by key %s) is valid\n", src.Bundle, ld.Bundle.Sequence, ld.Bundle.KeyID)
		return 0
	}
	fmt.Println("Configuration file is valid")
	return 0
}

func printErrors(err error) {
	var ce *config.Errors
	if errors.As(err, &ce) {
		for _, d := range ce.Diags {
			fmt.Fprintln(os.Stderr, d.String())
		}
		return
	}
	fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
}

func runChild(n string) int {
	num, err := strconv.Atoi(n)
	log := newLogger(os.Getenv("SLUICE_DEBUG") != "", false)
	if err != nil || num < 1 {
		log.Error("bad " + appliance.ChildEnv + " value " + strconv.Quote(n))
		return 2
	}
	if dir := os.Getenv("SLUICE_CPUPROFILE"); dir != "" {
		profileCPU(dir, num, log)
	}
	if err := worker.Run(os.NewFile(3, "control"), num, log); err != nil {
		log.Error("process failed", "process", num, "err", err)
		return 1
	}
	return 0
}

func newLogger(debug, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	} else if quiet {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// profileCPU records a CPU profile of this child for the benchmarks'
// analysis: SLUICE_CPUPROFILE=DIR writes DIR/cpu-process-N.pprof, covering
// the first SLUICE_CPUPROFILE_SECONDS (default 30) seconds of the process,
// then DIR/heap-process-N.pprof and DIR/goroutine-process-N.pprof as they
// are at that moment.
func profileCPU(dir string, num int, log *slog.Logger) {
	secs, err := strconv.Atoi(os.Getenv("SLUICE_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 30
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-process-%d.pprof", num)))
	if err != nil {
		log.Error("cpu profile", "err", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Error("cpu profile", "err", err)
		f.Close()
		return
	}
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		pprof.StopCPUProfile()
		f.Close()
		// The memory and goroutines at the same moment, for the
		// per-connection memory figure.
		for _, name := range []string{"heap", "goroutine"} {
			path := filepath.Join(dir, fmt.Sprintf("%s-process-%d.pprof", name, num))
			if err := writeProfile(name, path); err != nil {
				log.Error(name+" profile", "err", err)
			}
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		log.Info("memory at the end of the profile", "process", num,
			"heap_inuse_kib", m.HeapInuse>>10, "stack_inuse_kib", m.StackInuse>>10,
			"heap_idle_not_released_kib", (m.HeapIdle-m.HeapReleased)>>10,
			"sys_kib", m.Sys>>10, "goroutines", runtime.NumGoroutine())
	})
}

func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
