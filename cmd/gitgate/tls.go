package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/gitgate/gitgate/configs"
	"google.golang.org/grpc/credentials"
)

// serverTLS is the service's TLS: its certificate, and with tls_client_ca
// the requirement that gateways present a certificate that CA signed.
func serverTLS(c configs.Approach2Config) (credentials.TransportCredentials, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("approach2.tls_cert/tls_key: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.TLSClientCA != "" {
		pool, err := certPool(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("approach2.tls_client_ca: %w", err)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(conf), nil
}

// clientTLS is the gateway's TLS: the CA it trusts for the service, and with
// tls_client_cert/key the certificate it presents.
func clientTLS(c configs.Approach2Config) (credentials.TransportCredentials, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pool, err := certPool(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("approach2.tls_ca: %w", err)
		}
		conf.RootCAs = pool
	}
	if c.TLSClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSClientCert, c.TLSClientKey)
		if err != nil {
			return nil, fmt.Errorf("approach2.tls_client_cert/tls_client_key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(conf), nil
}

func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
