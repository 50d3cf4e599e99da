package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clientTLS is the TLS configuration of every benchtool client. X25519 only:
// Go would otherwise offer the hybrid post-quantum key exchange, which a Go
// server (Sluice) accepts and HAProxy's OpenSSL 3.0 does not, and the two
// servers would not do the same work per handshake. No session cache: every
// handshake is a full one, like ab's.
func clientTLS() *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true,
		CurvePreferences:   []tls.CurveID{tls.X25519},
		ServerName:         "localhost",
	}
}

// dialTLS makes one TCP connection and a full TLS handshake.
func dialTLS(ctx context.Context, addr string, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, clientTLS())
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// percentile returns the p-th percentile (0..1) of sorted durations, in µs.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Microsecond)
}

// cmdRate sends keep-alive HTTPS GETs at a fixed rate over a fixed number of
// connections and reports latency percentiles. Latency runs from the moment
// a request was due, not from when a connection was free to send it, so a
// stall is counted for every request it delays (no coordinated omission).
func cmdRate(args []string) error {
	fs := flag.NewFlagSet("rate", flag.ExitOnError)
	url := fs.String("url", "", "https URL")
	rate := fs.Int("rate", 1000, "requests per second")
	conns := fs.Int("conns", 16, "keep-alive connections")
	duration := fs.Duration("duration", 10*time.Second, "measuring time")
	fs.Parse(args)
	if *url == "" || *rate <= 0 || *conns <= 0 {
		return errors.New("need -url, -rate > 0, -conns > 0")
	}
	tr := &http.Transport{
		TLSClientConfig:     clientTLS(),
		MaxConnsPerHost:     *conns,
		MaxIdleConnsPerHost: *conns,
		DisableCompression:  true,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only, like wrk
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() error {
		resp, err := client.Get(*url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		return err
	}

	// Warm up: open every connection (handshakes are not what this measures).
	var wg sync.WaitGroup
	for range *conns {
		wg.Go(func() { get() })
	}
	wg.Wait()

	total := int(float64(*rate) * duration.Seconds())
	due := make(chan time.Time, total)
	// Requests still queued this long after the end are dropped and counted
	// as errors, so the run is bounded even when the server stalls.
	giveUp := time.Now().Add(*duration + 5*time.Second)
	var errs atomic.Int64
	lat := make([][]time.Duration, *conns)
	for w := range *conns {
		wg.Go(func() {
			for t := range due {
				if time.Now().After(giveUp) {
					errs.Add(1)
					continue
				}
				if err := get(); err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	// The schedule: request i is due at start + i/rate.
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	for i := 0; i < total; {
		now := time.Now()
		for ; i < total; i++ {
			t := start.Add(time.Duration(i) * interval)
			if t.After(now) {
				break
			}
			due <- t
		}
		time.Sleep(200 * time.Microsecond)
	}
	close(due)
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	fmt.Printf("sent=%d ok=%d errors=%d achieved_rps=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
		total, len(all), errs.Load(), float64(len(all))/elapsed.Seconds(),
		percentile(all, 0.50), percentile(all, 0.90), percentile(all, 0.99), percentile(all, 1))
	return nil
}

// cmdHold opens n TLS connections (full handshakes, nothing sent after) and
// keeps them open, idle, until SIGTERM or -max. It prints "ready ..." once
// every connection is up (or has failed), which the script waits for.
func cmdHold(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	n := fs.Int("n", 5000, "connections")
	conc := fs.Int("conc", 32, "concurrent handshakes while opening")
	openMax := fs.Duration("open-max", time.Minute, "stop opening after this long (the rest count as failed)")
	maxHold := fs.Duration("max", 3*time.Minute, "exit after this long in any case")
	echo := fs.Int("echo", 0, "bytes each connection sends once and reads back before it idles (an echo server behind a tcp-mode proxy): a session that had some traffic")
	fs.Parse(args)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	deadline := time.After(*maxHold)

	start := time.Now()
	openCtx, cancel := context.WithTimeout(context.Background(), *openMax)
	defer cancel()
	conns := make([]net.Conn, *n)
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				c, err := dialTLS(openCtx, *addr, 10*time.Second)
				if err == nil && *echo > 0 {
					if err = echoOnce(c, make([]byte, *echo)); err == nil {
						c.SetDeadline(time.Time{})
					} else {
						c.Close()
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	fe, _ := firstErr.Load().(string)
	fmt.Printf("ready established=%d failed=%d secs=%.2f first_error=%q\n",
		int64(*n)-failed.Load(), failed.Load(), time.Since(start).Seconds(), fe)
	os.Stdout.Sync()

	select {
	case <-stop:
	case <-deadline:
	}
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

// cmdHandshakes makes new TLS connections as fast as conc clients can, each
// a full handshake closed at once, for a fixed time.
func cmdHandshakes(args []string) error {
	fs := flag.NewFlagSet("handshakes", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	conc := fs.Int("conc", 32, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "how long")
	fs.Parse(args)
	ok, failed, firstErr := handshakeLoad(*addr, *conc, *duration)
	fmt.Printf("handshakes=%d failed=%d per_s=%.0f first_error=%q\n", ok, failed, float64(ok)/duration.Seconds(), firstErr)
	return nil
}

func handshakeLoad(addr string, conc int, duration time.Duration) (ok, failed int64, firstErr string) {
	// The end is checked against the clock, not only ctx.Err(): on a
	// starved CPU the context's timer fires late, and dials made meanwhile
	// fail at once with a deadline already past; those are not failures.
	end := time.Now().Add(duration)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	var nOK, nFail atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(end) {
				c, err := dialTLS(ctx, addr, 10*time.Second)
				if err != nil {
					if time.Now().Before(end) {
						nFail.Add(1)
						first.CompareAndSwap(nil, err.Error())
					}
					continue
				}
				c.Close()
				nOK.Add(1)
			}
		})
	}
	wg.Wait()
	fe, _ := first.Load().(string)
	return nOK.Load(), nFail.Load(), fe
}

// cmdStorm is the 9am storm. It opens -sessions TLS sessions to a tcp-mode
// worker in front of an echo server; each echoes a small message every
// -interval. After -calm, a separate process (this binary's "handshakes",
// so the storm does not share this process's scheduler) makes new
// handshakes as fast as it can for -storm. It reports echo latency
// percentiles for both phases; latency runs from when a message was due.
func cmdStorm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	sessions := fs.Int("sessions", 500, "established sessions")
	interval := fs.Duration("interval", 100*time.Millisecond, "echo period per session")
	calm := fs.Duration("calm", 10*time.Second, "calm phase")
	storm := fs.Duration("storm", 10*time.Second, "storm phase")
	stormConc := fs.Int("storm-conc", 32, "concurrent handshaking clients in the storm")
	pid := fs.Int("pid", 0, "server pid: report its CPU seconds (with descendants) in each phase")
	stormNice := fs.Int("storm-nice", 0, "run the storm process under 'nice -n N' (to undo a nice given to this measuring process)")
	fs.Parse(args)

	// Open the sessions and check each echoes once.
	conns := make([]net.Conn, *sessions)
	for i := range conns {
		c, err := dialTLS(context.Background(), *addr, 10*time.Second)
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		defer c.Close()
		if err := echoOnce(c, make([]byte, 16)); err != nil {
			return fmt.Errorf("session %d: first echo: %w", i, err)
		}
		conns[i] = c
	}

	// Phases, by when a message is due. The storm's first 200 ms (process
	// start-up) belong to neither.
	t0 := time.Now().Add(50 * time.Millisecond)
	stormStart := t0.Add(*calm)
	end := stormStart.Add(*storm)
	var mu sync.Mutex
	var calmLat, stormLat []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			msg := make([]byte, 16)
			offset := time.Duration(i) * *interval / time.Duration(*sessions)
			var mine, mineStorm []time.Duration
			for k := 0; ; k++ {
				due := t0.Add(offset + time.Duration(k)**interval)
				if !due.Before(end) {
					break
				}
				time.Sleep(time.Until(due))
				if err := echoOnce(c, msg); err != nil {
					errs.Add(1)
					break
				}
				l := time.Since(due)
				switch {
				case due.Before(stormStart):
					mine = append(mine, l)
				case due.After(stormStart.Add(200 * time.Millisecond)):
					mineStorm = append(mineStorm, l)
				}
			}
			mu.Lock()
			calmLat = append(calmLat, mine...)
			stormLat = append(stormLat, mineStorm...)
			mu.Unlock()
		})
	}

	// The server's CPU time at each phase boundary.
	var cpu [3]float64
	sample := func(i int) {
		if *pid > 0 {
			cpu[i] = treeCPU(*pid)
		}
	}
	time.Sleep(time.Until(t0))
	sample(0)

	// The storm, in its own process.
	time.Sleep(time.Until(stormStart))
	sample(1)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []string{self, "handshakes", "-addr", *addr, "-conc", fmt.Sprint(*stormConc), "-duration", storm.String()}
	if *stormNice != 0 {
		argv = append([]string{"nice", "-n", fmt.Sprint(*stormNice)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	stormOut := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(bufio.NewReader(out))
		stormOut <- strings.TrimSpace(string(b))
	}()
	wg.Wait()
	sample(2)
	var line string
	select {
	case line = <-stormOut:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
	}
	cmd.Wait()

	slices.Sort(calmLat)
	slices.Sort(stormLat)
	fmt.Printf("calm_n=%d calm_p50_us=%.0f calm_p99_us=%.0f storm_n=%d storm_p50_us=%.0f storm_p99_us=%.0f echo_errors=%d calm_cpu_s=%.2f storm_cpu_s=%.2f %s\n",
		len(calmLat), percentile(calmLat, 0.5), percentile(calmLat, 0.99),
		len(stormLat), percentile(stormLat, 0.5), percentile(stormLat, 0.99),
		errs.Load(), cpu[1]-cpu[0], cpu[2]-cpu[1], line)
	return nil
}

// echoOnce writes msg and reads the same number of bytes back.
func echoOnce(c net.Conn, msg []byte) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(c, msg)
	return err
}

// cmdWait waits until addr completes -n TLS handshakes in a row (with
// -path, an HTTP GET answered 200 on each), or fails after -timeout.
func cmdWait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port")
	path := fs.String("path", "", "HTTP path to GET after the handshake (empty: handshake only)")
	n := fs.Int("n", 4, "successes in a row")
	timeout := fs.Duration("timeout", 20*time.Second, "give up after")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)
	var last error
	for ok := 0; ok < *n; {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", *addr, *timeout, last)
		}
		if last = tryOnce(*addr, *path); last != nil {
			ok = 0
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ok++
	}
	return nil
}

func tryOnce(addr, path string) error {
	c, err := dialTLS(context.Background(), addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if path == "" {
		return nil
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
