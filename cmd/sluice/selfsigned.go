package main

import (
	"flag"
	"fmt"
	"os"

	tlsctx "github.com/sluicelb/sluice/tls"
)

// runSelfSigned is `sluice selfsigned -o FILE HOST...`: write a self-signed
// certificate and its key as one PEM bundle, the form a "crt" file takes.
// The appliance's first boot uses it, so that it needs no openssl.
func runSelfSigned(args []string) int {
	fs := flag.NewFlagSet("sluice selfsigned", flag.ContinueOnError)
	out := fs.String("o", "", "write the PEM bundle (certificate and key) to `FILE` (mode 0600)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: sluice selfsigned -o FILE [HOST...]   (hosts: DNS names or IP addresses; default localhost)")
		return 2
	}
	_, pem, err := tlsctx.SelfSigned(fs.Args()...)
	if err == nil {
		err = os.WriteFile(*out, pem, 0o600)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice selfsigned: %v\n", err)
		return 1
	}
	return 0
}
