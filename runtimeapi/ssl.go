package runtimeapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"

	tlsctx "github.com/sluicelb/sluice/tls"
)

// CertFile is a certificate file of the ssl binds, for "show ssl cert".
type CertFile struct {
	Name  string              // the path as the configuration names it
	Chain []*x509.Certificate // the leaf first
	OCSP  bool                // an OCSP response is stapled with it
	// Pending marks the version staged by "set ssl cert" and not yet
	// committed; HAProxy shows it as "*NAME".
	Pending bool
}

// ECHInfo is what a bind with Encrypted Client Hello publishes.
type ECHInfo struct {
	PublicName string
	// ConfigList is the ECHConfigList clients need, newest key first.
	ConfigList []byte
	// HTTPS is a DNS HTTPS record carrying it, in zone file form.
	HTTPS string
}

// sslCommands are the certificate commands. HAProxy reserves them for the
// admin level: they show and replace keys.
func (c *cli) sslCommands() []command {
	return []command{
		{name: "show ssl cert", args: "[<certfile>]", help: "display the SSL certificates used in memory, or the details of a file", level: levelAdmin, run: c.showSSLCert},
		{name: "set ssl cert", args: "<certfile> <payload>", help: "replace a certificate file (commit to apply)", level: levelAdmin, run: c.setSSLCert},
		{name: "commit ssl cert", args: "<certfile>", help: "commit a certificate file", level: levelAdmin, run: c.commitSSLCert},
		{name: "abort ssl cert", args: "<certfile>", help: "abort a transaction for a certificate file", level: levelAdmin, run: c.abortSSLCert},
		{name: "set ssl ocsp-response", args: "<resp|payload>", help: "update a certificate's OCSP Response from a base64-encode DER", level: levelAdmin, run: c.setOCSPResponse},
		{name: "show ssl ech", args: "[<public name>]", help: "display the Encrypted Client Hello configurations to publish (base64 and DNS HTTPS record)", level: levelUser, run: c.showSSLECH},
	}
}

func (c *cli) showSSLCert(_ context.Context, _ *session, args []string) string {
	files := c.app.CertFiles()
	if len(args) == 0 {
		var b strings.Builder
		b.WriteString("# transaction\n")
		for _, f := range files {
			if f.Pending {
				fmt.Fprintf(&b, "*%s\n", f.Name)
			}
		}
		b.WriteString("# filename\n")
		for _, f := range files {
			if !f.Pending {
				fmt.Fprintf(&b, "%s\n", f.Name)
			}
		}
		return b.String()
	}
	if len(args) > 1 {
		return errorf("'show ssl cert' expects at most one certificate file name.")
	}
	name, pending := strings.CutPrefix(args[0], "*")
	for _, f := range files {
		if f.Name == name && f.Pending == pending {
			return describeCert(f)
		}
	}
	return errorf("Can't display the certificate: Not found or the certificate is a bundle!")
}

// describeCert writes HAProxy's "show ssl cert <file>" details.
func describeCert(f CertFile) string {
	var b strings.Builder
	name := f.Name
	status := "Used"
	if f.Pending {
		name, status = "*"+f.Name, "Uncommitted"
	}
	fmt.Fprintf(&b, "Filename: %s\nStatus: %s\n", name, status)
	if len(f.Chain) == 0 {
		return b.String()
	}
	leaf := f.Chain[0]
	fmt.Fprintf(&b, "Serial: %X\n", leaf.SerialNumber)
	fmt.Fprintf(&b, "notBefore: %s\n", leaf.NotBefore.UTC().Format("Jan _2 15:04:05 2006 GMT"))
	fmt.Fprintf(&b, "notAfter: %s\n", leaf.NotAfter.UTC().Format("Jan _2 15:04:05 2006 GMT"))
	var sans []string
	for _, n := range leaf.DNSNames {
		sans = append(sans, "DNS:"+n)
	}
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, "IP Address:"+ip.String())
	}
	if len(sans) > 0 {
		fmt.Fprintf(&b, "Subject Alternative Name: %s\n", strings.Join(sans, ", "))
	}
	fmt.Fprintf(&b, "Algorithm: %s\n", keyAlgorithm(leaf))
	fmt.Fprintf(&b, "SHA1 FingerPrint: %X\n", sha1.Sum(leaf.Raw))
	fmt.Fprintf(&b, "Subject: %s\n", tlsctx.OnelineDN(leaf.RawSubject))
	fmt.Fprintf(&b, "Issuer: %s\n", tlsctx.OnelineDN(leaf.RawIssuer))
	for _, c := range f.Chain[1:] {
		fmt.Fprintf(&b, "Chain Subject: %s\nChain Issuer: %s\n", tlsctx.OnelineDN(c.RawSubject), tlsctx.OnelineDN(c.RawIssuer))
	}
	if f.OCSP {
		b.WriteString("OCSP Response: stapled\n")
	}
	return b.String()
}

// keyAlgorithm names a certificate's key as HAProxy does: RSA2048, EC256.
func keyAlgorithm(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("EC%d", k.Curve.Params().BitSize)
	case ed25519.PublicKey:
		return "ED25519"
	}
	return c.PublicKeyAlgorithm.String()
}

func (c *cli) setSSLCert(_ context.Context, _ *session, args []string) string {
	if len(args) != 2 {
		return errorf("'set ssl cert' expects a filename and a certificate as a payload")
	}
	name, payload := args[0], args[1]
	created, err := c.app.SetCert(name, payload)
	if err != nil {
		return fmt.Sprintf("%s\nCan't update %s!\n", oneLine(err.Error()), name)
	}
	if created {
		return fmt.Sprintf("Transaction created for certificate %s!\n", strings.TrimSuffix(name, ".ocsp"))
	}
	return fmt.Sprintf("Transaction updated for certificate %s!\n", strings.TrimSuffix(name, ".ocsp"))
}

func (c *cli) commitSSLCert(ctx context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("'commit ssl cert' expects a filename")
	}
	if err := c.app.CommitCert(ctx, args[0]); err != nil {
		return errorf("%v", err)
	}
	return fmt.Sprintf("Committing %s.\nSuccess!\n", args[0])
}

func (c *cli) abortSSLCert(_ context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("'abort ssl cert' expects a filename")
	}
	if err := c.app.AbortCert(args[0]); err != nil {
		return errorf("%v", err)
	}
	return fmt.Sprintf("Transaction aborted for certificate '%s'!\n", args[0])
}

func (c *cli) setOCSPResponse(ctx context.Context, _ *session, args []string) string {
	if len(args) != 1 {
		return errorf("'set ssl ocsp-response' expects response in base64 encoding.")
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(args[0]), ""))
	if err != nil {
		return errorf("'set ssl ocsp-response' received invalid base64 encoded response.")
	}
	if err := c.app.SetOCSPResponse(ctx, der); err != nil {
		return errorf("OCSP single response: %v", err)
	}
	return "OCSP Response updated!\n"
}

func (c *cli) showSSLECH(_ context.Context, _ *session, args []string) string {
	if len(args) > 1 {
		return errorf("'show ssl ech' expects at most a public name")
	}
	var b strings.Builder
	for _, e := range c.app.ECH() {
		if len(args) == 1 && e.PublicName != strings.ToLower(args[0]) {
			continue
		}
		fmt.Fprintf(&b, "public-name: %s\nech-config-list: %s\nhttps-record: %s\n", e.PublicName, base64.StdEncoding.EncodeToString(e.ConfigList), e.HTTPS)
	}
	if b.Len() == 0 && len(args) == 1 {
		return errorf("No bind uses Encrypted Client Hello with public name '%s'.", args[0])
	}
	return b.String()
}
