package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/popbridge/popbridge/backend/upstream"
)

// newPool builds the upstream connection pool from [upstream].
func newPool(u *UpstreamConfig, log *slog.Logger) (*upstream.Pool, error) {
	var tlsCfg *tls.Config
	if u.CACert != "" || u.InsecureSkipVerify {
		tlsCfg = &tls.Config{ServerName: u.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: u.InsecureSkipVerify}
		if u.CACert != "" {
			pem, err := os.ReadFile(u.CACert)
			if err != nil {
				return nil, fmt.Errorf("upstream.ca_cert: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("upstream.ca_cert: no certificate found in %s", u.CACert)
			}
			tlsCfg.RootCAs = pool
		}
	}
	var (
		mu    sync.Mutex
		token string
	)
	tokenFn := func(ctx context.Context, refresh bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if token != "" && !refresh {
			return token, nil
		}
		t, err := u.OAuth2Token(ctx)
		if err != nil {
			return "", err
		}
		token = t
		return t, nil
	}
	if u.OAuth2 != nil {
		tokenFn = u.oauthSource(log).Token
	}
	return upstream.New(upstream.Options{
		Host:           u.Host,
		Port:           u.Port,
		TLS:            upstream.TLSMode(u.TLS),
		TLSConfig:      tlsCfg,
		Username:       u.Username,
		Auth:           upstream.AuthMech(u.Auth),
		MaxConnections: u.MaxConnections,
		Logger:         log,
		Password:       u.ResolvePassword,
		Token:          tokenFn,
	})
}
