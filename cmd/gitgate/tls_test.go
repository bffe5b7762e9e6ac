package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/approach2"
	"github.com/gitgate/gitgate/configs"
	"github.com/gitgate/gitgate/internal/testkit"
	"google.golang.org/grpc"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string // path of the CA certificate
}

func newCA(t *testing.T, name string) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	path := filepath.Join(t.TempDir(), name+".pem")
	writePEM(t, path, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, pem: path}
}

// issue makes a certificate for 127.0.0.1 signed by ca and returns the
// paths of the certificate and its key.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (certPath, keyPath string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certPath, "CERTIFICATE", der)
	writePEM(t, keyPath, "EC PRIVATE KEY", keyDER)
	return certPath, keyPath
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLS: with tls_client_ca the service accepts only gateways whose
// certificate that CA signed; without trust in the service's CA the gateway
// refuses it. Refused connections never start an operation.
func TestMutualTLS(t *testing.T) {
	ca, rogue := newCA(t, "gitgate-ca"), newCA(t, "rogue-ca")
	srvCert, srvKey := ca.issue(t, "service", x509.ExtKeyUsageServerAuth)
	goodCert, goodKey := ca.issue(t, "gateway", x509.ExtKeyUsageClientAuth)
	badCert, badKey := rogue.issue(t, "intruder", x509.ExtKeyUsageClientAuth)
	creds, err := serverTLS(configs.Approach2Config{TLSCert: srvCert, TLSKey: srvKey, TLSClientCA: ca.pem})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	svc := approach2.NewServer(approach2.ServerConfig{Token: serviceToken, Engine: backends.ExecutorFunc(
		func(context.Context, backends.Request) (backends.Result, error) {
			ran = true
			return &backends.StatusResult{}, nil
		})})
	g := grpc.NewServer(append(svc.ServerOptions(), grpc.Creds(creds))...)
	svc.Register(g)
	ln := listenLoopback(t)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	call := func(c configs.Approach2Config) error {
		c.Target, c.Token = ln.Addr().String(), serviceToken
		client, err := dialApproach2(c, configs.LimitsConfig{}, configs.GitConfig{})
		if err != nil {
			return err
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(t.Context(), testkit.Patience)
		defer cancel()
		_, err = client.Execute(ctx, &backends.StatusRequest{Scope: backends.Scope{Principal: backends.Principal{Project: "p", Agent: "a"}, Workspace: "w"}})
		return err
	}
	if err := call(configs.Approach2Config{TLSCA: ca.pem, TLSClientCert: goodCert, TLSClientKey: goodKey}); err != nil || !ran {
		t.Fatalf("gateway with a certificate the CA signed: %v (ran %v)", err, ran)
	}
	for name, c := range map[string]configs.Approach2Config{
		"no client certificate":       {TLSCA: ca.pem},
		"certificate of another CA":   {TLSCA: ca.pem, TLSClientCert: badCert, TLSClientKey: badKey},
		"service's CA is not trusted": {TLSCA: rogue.pem, TLSClientCert: goodCert, TLSClientKey: goodKey},
	} {
		ran = false
		err := call(c)
		if err == nil || ran || !errors.Is(err, backends.ErrNotStarted) {
			t.Errorf("%s: %v (ran %v), want a refusal that never started", name, err, ran)
		}
	}
}
