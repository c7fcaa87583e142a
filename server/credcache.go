package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// Successful password checks are remembered for a short time so that a
// phone opening several connections, or reconnecting, does not pay a
// bcrypt comparison (hundreds of milliseconds of CPU) for every LOGIN, as
// Dovecot's auth cache does. What is remembered is an HMAC, under a random
// per-process key, of the user name and password: the cache holds nothing a
// memory dump could turn back into a password faster than the bcrypt hash
// itself. An entry is only good together with the bcrypt hash it was
// verified against, so a changed password hash invalidates it; SetUsers
// also empties the cache. Failed checks are never cached.
const (
	credCacheTTL = 5 * time.Minute
	credCacheMax = 1024
)

type credKey [sha256.Size]byte

type credEntry struct {
	hash    string // the bcrypt hash the password was verified against
	expires time.Time
}

// credCache is safe for concurrent use.
type credCache struct {
	key [32]byte
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[credKey]credEntry
}

func newCredCache(ttl time.Duration, max int, now func() time.Time) *credCache {
	c := &credCache{ttl: ttl, max: max, now: now, m: make(map[credKey]credEntry)}
	if c.now == nil {
		c.now = time.Now
	}
	rand.Read(c.key[:]) // never fails (crypto/rand panics instead)
	return c
}

func (c *credCache) keyOf(user, pw string) credKey {
	m := hmac.New(sha256.New, c.key[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(pw))
	var k credKey
	m.Sum(k[:0])
	return k
}

// ok reports whether user/pw was verified against hash less than ttl ago.
func (c *credCache) ok(user, pw, hash string) bool {
	k := c.keyOf(user, pw)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, found := c.m[k]
	if !found {
		return false
	}
	if !c.now().Before(e.expires) || e.hash != hash {
		delete(c.m, k)
		return false
	}
	return true
}

// add remembers a successful verification of user/pw against hash.
func (c *credCache) add(user, pw, hash string) {
	k := c.keyOf(user, pw)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, found := c.m[k]; !found && len(c.m) >= c.max {
		c.evictLocked(now)
	}
	c.m[k] = credEntry{hash: hash, expires: now.Add(c.ttl)}
}

// evictLocked drops expired entries, and the one closest to expiry when
// none has expired.
func (c *credCache) evictLocked(now time.Time) {
	var oldest credKey
	var oldestExp time.Time
	for k, e := range c.m {
		if !now.Before(e.expires) {
			delete(c.m, k)
			continue
		}
		if oldestExp.IsZero() || e.expires.Before(oldestExp) {
			oldest, oldestExp = k, e.expires
		}
	}
	if len(c.m) >= c.max {
		delete(c.m, oldest)
	}
}

// clear forgets everything.
func (c *credCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *credCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
