package server

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"golang.org/x/crypto/bcrypt"
)

// fakeClock is an injected clock for the credential cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestCredCacheExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newCredCache(5*time.Minute, 10, clk.now)
	if c.ok("alice", "pw", "H1") {
		t.Fatal("empty cache said yes")
	}
	c.add("alice", "pw", "H1")
	if !c.ok("alice", "pw", "H1") {
		t.Fatal("fresh entry not found")
	}
	for _, x := range []struct{ user, pw string }{
		{"alice", "pw2"}, {"alice", "p"}, {"bob", "pw"}, {"alicep", "w"}, {"alic", "epw"},
	} {
		if c.ok(x.user, x.pw, "H1") {
			t.Errorf("cache accepted %q/%q after %q/%q was verified", x.user, x.pw, "alice", "pw")
		}
	}
	clk.advance(5*time.Minute - time.Nanosecond)
	if !c.ok("alice", "pw", "H1") {
		t.Fatal("entry gone before its lifetime")
	}
	// A hit does not extend the lifetime.
	clk.advance(time.Nanosecond)
	if c.ok("alice", "pw", "H1") {
		t.Fatal("entry still good after its lifetime")
	}
	if n := c.len(); n != 0 {
		t.Errorf("expired entry kept: %d entries", n)
	}
}

func TestCredCacheChangedHashInvalidates(t *testing.T) {
	c := newCredCache(time.Hour, 10, nil)
	c.add("alice", "pw", "H1")
	if c.ok("alice", "pw", "H2") {
		t.Fatal("entry verified against H1 accepted for H2")
	}
	// The mismatch dropped it: going back to H1 needs a new check.
	if c.ok("alice", "pw", "H1") {
		t.Fatal("entry survived a hash mismatch")
	}
	c.add("alice", "pw", "H1")
	c.clear()
	if c.ok("alice", "pw", "H1") {
		t.Fatal("entry survived clear")
	}
}

func TestCredCacheBounded(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := newCredCache(time.Hour, 3, clk.now)
	for i := range 3 {
		c.add("u", fmt.Sprint(i), "H")
		clk.advance(time.Second)
	}
	c.add("u", "3", "H") // evicts the oldest, "0"
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want 3", n)
	}
	want := map[string]bool{"0": false, "1": true, "2": true, "3": true}
	for pw, w := range want {
		if got := c.ok("u", pw, "H"); got != w {
			t.Errorf("ok(%q) = %v, want %v", pw, got, w)
		}
	}
	// Expired entries go first.
	clk.advance(time.Hour)
	c.add("u", "4", "H")
	if n := c.len(); n != 1 {
		t.Errorf("%d entries after adding past everyone's expiry, want 1", n)
	}
}

func TestCredCacheConcurrent(t *testing.T) {
	c := newCredCache(time.Hour, 64, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				pw := fmt.Sprint(g, "-", i%100)
				c.add("u", pw, "H")
				c.ok("u", pw, "H")
				if i%50 == 0 {
					c.clear()
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > 64 {
		t.Errorf("%d entries, bound is 64", n)
	}
}

// countCompares makes the server count its bcrypt comparisons.
func countCompares(s *Server) *atomic.Int64 {
	var n atomic.Int64
	s.compare = func(hash, pw []byte) error {
		n.Add(1)
		return bcrypt.CompareHashAndPassword(hash, pw)
	}
	return &n
}

func loginErr(t *testing.T, env *testEnv, user, pw string) error {
	t.Helper()
	c := dialClient(t, env.addr, nil)
	err := c.Login(user, pw).Wait()
	if err == nil {
		c.Logout().Wait()
	}
	c.Close()
	return err
}

func TestLoginCacheSkipsBcrypt(t *testing.T) {
	env := newTestEnv(t, nil)
	n := countCompares(env.s)
	for i := range 3 {
		if err := loginErr(t, env, testUser, testPass); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d bcrypt comparisons for 3 logins, want 1", got)
	}
}

func TestLoginCacheNeverCachesFailures(t *testing.T) {
	const delay = 30 * time.Millisecond
	env := newTestEnv(t, func(o *Options) { o.AuthFailDelay = delay })
	n := countCompares(env.s)
	if err := loginErr(t, env, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ user, pw string }{
		{testUser, "wrong"}, {testUser, "wrong"}, {"mallory", testPass}, {"mallory", testPass},
	} {
		start := time.Now()
		err := loginErr(t, env, x.user, x.pw)
		var imapErr *imap.Error
		if !errors.As(err, &imapErr) || imapErr.Code != imap.ResponseCodeAuthenticationFailed {
			t.Fatalf("login %s/%s: %v, want NO [AUTHENTICATIONFAILED]", x.user, x.pw, err)
		}
		if el := time.Since(start); el < delay {
			t.Errorf("failed login %s/%s answered after %v, before the %v delay", x.user, x.pw, el, delay)
		}
	}
	// One comparison for the first good login, one per failure (the
	// unknown user's against the dummy hash).
	if got := n.Load(); got != 5 {
		t.Errorf("%d bcrypt comparisons, want 5", got)
	}
}

func TestLoginCacheDroppedWhenUsersChange(t *testing.T) {
	env := newTestEnv(t, nil)
	n := countCompares(env.s)
	if err := loginErr(t, env, testUser, testPass); err != nil {
		t.Fatal(err)
	}
	const newPass = "another-Pa55word"
	if err := env.s.SetUsers([]User{{Name: testUser, PasswordHash: mustHash(t, newPass)}}); err != nil {
		t.Fatal(err)
	}
	if err := loginErr(t, env, testUser, testPass); err == nil {
		t.Fatal("the old password still logs in after the hash changed")
	}
	if err := loginErr(t, env, testUser, newPass); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := loginErr(t, env, testUser, newPass); err != nil {
		t.Fatalf("new password, second login: %v", err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("%d bcrypt comparisons, want 3 (first login, old password, first new login)", got)
	}
	// Removing the user ends the cached login too.
	if err := env.s.SetUsers([]User{{Name: "bob", PasswordHash: mustHash(t, "bob")}}); err != nil {
		t.Fatal(err)
	}
	if err := loginErr(t, env, testUser, newPass); err == nil {
		t.Fatal("a removed user still logs in")
	}
	// Bad tables are refused and change nothing.
	if err := env.s.SetUsers([]User{{Name: "x", PasswordHash: "not a hash"}}); err == nil {
		t.Fatal("SetUsers accepted a non-bcrypt hash")
	}
	if err := loginErr(t, env, "bob", "bob"); err != nil {
		t.Fatalf("after a refused SetUsers: %v", err)
	}
}

func TestLoginCacheOff(t *testing.T) {
	env := newTestEnv(t, func(o *Options) { o.AuthCacheTTL = -1 })
	n := countCompares(env.s)
	for range 2 {
		if err := loginErr(t, env, testUser, testPass); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 2 {
		t.Errorf("%d bcrypt comparisons with the cache off, want 2", got)
	}
}
