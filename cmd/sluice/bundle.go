package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/sluicelb/sluice/appliance"
	"github.com/sluicelb/sluice/bundle"
)

const bundleUsage = `usage:
  sluice bundle keygen -o PREFIX                   write PREFIX.key (secret) and PREFIX.pub
  sluice bundle sign -k PREFIX.key -o BUNDLE [-n SEQUENCE] [-expires DURATION] FILE...
                                                   sign the configuration FILEs and every file they name
  sluice bundle verify -p PREFIX.pub [-p ...] BUNDLE
                                                   exit 0 if valid, 1 with the reason
`

// runBundle is `sluice bundle ...`: exit 0 on success, 1 with the reason,
// 2 for a usage error.
func runBundle(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, bundleUsage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return bundleKeygen(args[1:])
	case "sign":
		return bundleSign(args[1:])
	case "verify":
		return bundleVerify(args[1:])
	}
	fmt.Fprintf(os.Stderr, "sluice bundle: unknown command %q\n%s", args[0], bundleUsage)
	return 2
}

func bundleKeygen(args []string) int {
	fs := flag.NewFlagSet("sluice bundle keygen", flag.ContinueOnError)
	prefix := fs.String("o", "", "write `PREFIX`.key and PREFIX.pub")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *prefix == "" || fs.NArg() > 0 {
		fmt.Fprint(os.Stderr, bundleUsage)
		return 2
	}
	k, err := bundle.GenerateKey()
	if err == nil {
		err = bundle.WriteKeyPair(k, *prefix)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bundle keygen: %v\n", err)
		return 1
	}
	fmt.Printf("wrote %s.key (keep it secret) and %s.pub (key id %s)\n", *prefix, *prefix, k.Pub.ID)
	return 0
}

func bundleSign(args []string) int {
	fs := flag.NewFlagSet("sluice bundle sign", flag.ContinueOnError)
	keyPath := fs.String("k", "", "private key `FILE` (PREFIX.key)")
	out := fs.String("o", "", "write the bundle to `FILE`")
	seq := fs.Uint64("n", 0, "sequence `NUMBER` (default: the current Unix time, so that later bundles are higher)")
	expires := fs.Duration("expires", 0, "validity `DURATION` from now (e.g. 720h); 0 for a bundle that does not expire")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *keyPath == "" || *out == "" || fs.NArg() == 0 {
		fmt.Fprint(os.Stderr, bundleUsage)
		return 2
	}
	key, err := bundle.ReadPrivateKey(*keyPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bundle sign: %v\n", err)
		return 1
	}
	cfgFiles, contents, err := appliance.Collect(fs.Args())
	if err != nil {
		printErrors(err)
		return 1
	}
	now := time.Now().UTC().Truncate(time.Second)
	m := bundle.Manifest{Sequence: *seq, Created: now, Config: cfgFiles}
	if m.Sequence == 0 {
		m.Sequence = uint64(now.Unix())
	}
	if *expires > 0 {
		m.Expires = now.Add(*expires)
	}
	paths := make([]string, 0, len(contents))
	for p := range contents {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		m.Files = append(m.Files, bundle.File{Path: p, Data: contents[p]})
	}
	data, err := bundle.Sign(key, m)
	if err == nil {
		// The bundle holds private keys: readable by its owner only.
		err = os.WriteFile(*out, data, 0o600)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice bundle sign: %v\n", err)
		return 1
	}
	fmt.Printf("wrote %s: sequence %d, %d files, signed by key %s\n", *out, m.Sequence, len(m.Files), key.Pub.ID)
	for _, f := range m.Files {
		fmt.Printf("  %s (%d bytes)\n", f.Path, len(f.Data))
	}
	return 0
}

func bundleVerify(args []string) int {
	fs := flag.NewFlagSet("sluice bundle verify", flag.ContinueOnError)
	var pubs fileList
	fs.Var(&pubs, "p", "trusted public key `FILE` (PREFIX.pub, repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(pubs) == 0 || fs.NArg() != 1 {
		fmt.Fprint(os.Stderr, bundleUsage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "sluice bundle verify: %v\n", err)
		return 1
	}
	var keys []*bundle.PublicKey
	for _, p := range pubs {
		k, err := bundle.ReadPublicKey(p)
		if err != nil {
			return fail(err)
		}
		keys = append(keys, k)
	}
	path := fs.Arg(0)
	data, err := bundle.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	b, err := bundle.Verify(data, keys, time.Now())
	if err != nil {
		return fail(fmt.Errorf("%s: %w", path, err))
	}
	expires := "never"
	if !b.Expires.IsZero() {
		expires = b.Expires.Format(time.RFC3339)
	}
	fmt.Printf("%s: valid: sequence %d, created %s, expires %s, signed by key %s (Ed25519 + ML-DSA-65), %d files, configuration %v\n",
		path, b.Sequence, b.Created.Format(time.RFC3339), expires, b.KeyID, len(b.Files), b.Config)
	return 0
}
