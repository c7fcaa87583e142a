package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/popbridge/popbridge/oauth"
)

// oauthPresetOverride replaces the providers' endpoints when set (tests:
// a fake authorization server on loopback).
var oauthPresetOverride *oauth.Preset

func oauthConfig(o *OAuth2Config) oauth.Config {
	return oauth.Config{Provider: o.Provider, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Tenant: o.Tenant, Override: oauthPresetOverride}
}

// oauthSource is the upstream account's token source ([upstream.oauth2]).
func (u *UpstreamConfig) oauthSource(log *slog.Logger) *oauth.Source {
	return oauth.NewSource(oauthConfig(u.OAuth2), oauth.NewStore(u.dataDir), u.Username, log)
}

// oauthSource is the POP3 account's token source ([pop3.oauth2]).
func (p *POP3Config) oauthSource(log *slog.Logger) *oauth.Source {
	return oauth.NewSource(oauthConfig(p.OAuth2), oauth.NewStore(p.dataDir), p.Username, log)
}

const loginTimeout = 10 * time.Minute

func runLogin(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("login", "[-config FILE] [-pop3 NAME] [-print]", stderr)
	cfgPath := fs.String("config", "", "configuration file")
	popName := fs.String("pop3", "", "sign in the [[pop3]] account with this name instead of [upstream]")
	printOnly := fs.Bool("print", false, "print the sign-in address instead of opening the browser (e.g. over ssh)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfigFlag(*cfgPath, stderr)
	if err != nil {
		return fail(stderr, err)
	}
	var (
		o       *OAuth2Config
		account string
		what    string
	)
	if *popName != "" {
		for i := range cfg.POP3 {
			if cfg.POP3[i].Name == *popName {
				o, account, what = cfg.POP3[i].OAuth2, cfg.POP3[i].Username, fmt.Sprintf("[[pop3]] %q", *popName)
				if o == nil {
					return fail(stderr, fmt.Errorf("%s has no [pop3.oauth2]: add provider and client_id under it (see config.example.toml) to sign in in the browser", what))
				}
			}
		}
		if o == nil {
			return fail(stderr, fmt.Errorf("no [[pop3]] account is named %q", *popName))
		}
	} else {
		if cfg.Upstream == nil || cfg.Upstream.OAuth2 == nil {
			return fail(stderr, errors.New("no [upstream.oauth2] in the configuration: add provider and client_id under it (see config.example.toml and the README's \"Signing in with Microsoft or Google\")"))
		}
		o, account, what = cfg.Upstream.OAuth2, cfg.Upstream.Username, "[upstream]"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	if err := login(ctx, cfg, oauthConfig(o), account, *printOnly, stdout); err != nil {
		return fail(stderr, fmt.Errorf("%s: %w", what, err))
	}
	return 0
}

// login runs one browser sign-in and stores the tokens.
func login(ctx context.Context, cfg *Config, oc oauth.Config, account string, printOnly bool, stdout io.Writer) error {
	p, err := oc.Preset()
	if err != nil {
		return err
	}
	store := oauth.NewStore(cfg.DataDir)
	f, err := oauth.Start(ctx, oauth.LoginOptions{Config: oc, Store: store, Account: account})
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(stdout, "Sign in to %s as %s in your browser:\n\n  %s\n\n", p.Name, account, f.AuthURL)
	if !printOnly {
		if err := openBrowser(f.AuthURL); err != nil {
			fmt.Fprintf(stdout, "(could not open a browser: %v; open the address above yourself)\n", err)
		}
	}
	fmt.Fprintf(stdout, "Waiting for the sign-in (%s at most; Ctrl-C to cancel)…\n", loginTimeout)
	if err := f.Wait(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Signed in to %s as %s. popbridge keeps the sign-in in %s and renews it by itself; a running bridge uses it from its next connection.\n",
		p.Name, account, store.Path(oc.Provider, account))
	return nil
}
