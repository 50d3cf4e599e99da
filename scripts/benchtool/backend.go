package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// smallBody is the answer to "/": a typical small API response.
var smallBody = []byte("hello from the sluice benchmark backend\n")

// bigBody is the answer to "/1m": 1 MiB, allocated once.
var bigBody = make([]byte, 1<<20)

// textBody is the answer to "/text": 1 MiB of words in random order,
// which compresses like a web page (about 3:1 with gzip level 1), for the
// compression figure. Made once, the same at every start.
var textBody = makeText(1 << 20)

func makeText(n int) []byte {
	words := []string{"sluice ", "tier ", "<p class=\"item\">", "</p>\n", "compression ",
		"worker ", "handshake ", "2026 ", "dispatcher ", "<a href=\"/x\">", "</a> "}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
	}
	return b[:n]
}

// cmdBackend serves HTTP and a TCP echo until SIGTERM or SIGINT.
func cmdBackend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	httpAddr := fs.String("http", "127.0.0.1:8080", "HTTP listen address")
	echoAddr := fs.String("echo", "", "TCP echo listen address (empty: none)")
	fs.Parse(args)

	for i := range bigBody {
		bigBody[i] = 'a' + byte(i%26)
	}
	hln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/1m", func(w http.ResponseWriter, r *http.Request) { serve(w, bigBody) })
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { serve(w, textBody) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { serve(w, smallBody) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute}
	go srv.Serve(hln)

	if *echoAddr != "" {
		eln, err := net.Listen("tcp", *echoAddr)
		if err != nil {
			return err
		}
		go echoServe(eln)
	}
	fmt.Printf("backend http=%s echo=%s pid=%d\n", *httpAddr, *echoAddr, os.Getpid())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

func serve(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// echoServe copies every connection's bytes back to it.
func echoServe(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}
