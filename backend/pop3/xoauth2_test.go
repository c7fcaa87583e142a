package pop3

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/popbridge/popbridge/internal/oauthtest"
	"github.com/popbridge/popbridge/internal/testenv"
)

// TestXOAUTH2: a real POP3 server (Dovecot, its oauth2 passdb asking the
// fake authorization server) accepts AUTH XOAUTH2 only with a current
// token. An expired token is replaced once per round (refresh=true); a
// token source that cannot renew fails the round with its words.
func TestXOAUTH2(t *testing.T) {
	testenv.RequireDovecot(t)
	fake := oauthtest.Start(t, "client")
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{NoSpecialUse: true, OAuth2IntrospectURL: fake.IntrospectURL(),
		Users: []testenv.DovecotUser{{Name: popUser, Password: popPass}}})
	deliverAll(t, dc, genMsg(1, ""), genMsg(2, ""))
	b := newBridge(t, bridgeOptions{})

	var mu sync.Mutex
	current := fake.CurrentAccessToken(popUser)
	var asked []bool
	renew := func() (string, error) { return fake.CurrentAccessToken(popUser), nil }
	a := plainAccount(dc.POP3Port)
	a.Password = nil
	a.Token = func(_ context.Context, refresh bool) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, refresh)
		if refresh {
			tok, err := renew()
			if err != nil {
				return "", err
			}
			current = tok
		}
		return current, nil
	}
	f := newFetcher(t, b, nil, a)
	wantCounts(t, "first round", round(t, f), 2, 0, 0, 0)
	if len(asked) != 1 || asked[0] {
		t.Errorf("token asks = %v, want one without refresh", asked)
	}

	// Expired: rejected, renewed once, fetched.
	fake.ExpireAccessTokens()
	deliverAll(t, dc, genMsg(3, ""))
	asked = nil
	wantCounts(t, "after expiry", round(t, f), 1, 0, 0, 0)
	if len(asked) != 2 || asked[0] || !asked[1] {
		t.Errorf("token asks = %v, want a cached one, then one refresh", asked)
	}

	// Cannot renew (refresh token revoked): the round fails with the
	// source's message, and no token appears in the error.
	fake.ExpireAccessTokens()
	renew = func() (string, error) {
		return "", errors.New("Microsoft no longer accepts popbridge's sign-in for alice: sign in again")
	}
	_, err := f.Round(context.Background())
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != KindCredentials || !strings.Contains(err.Error(), "sign in again") {
		t.Fatalf("round with a dead sign-in: %v", err)
	}
	for _, tok := range fake.Tokens() {
		if strings.Contains(err.Error(), tok) {
			t.Errorf("a token appears in the error: %v", err)
		}
	}
	// (A token the server never issued is refused too: see the IMAP test
	// in package oauth. Not repeated here: Dovecot's per-address penalty
	// after failed logins would delay the next attempt by seconds.)
}
