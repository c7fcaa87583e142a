package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/fsutil"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Store keeps signed-in accounts' tokens in a directory (data_dir/oauth).
type Store struct {
	Dir string
}

// NewStore returns the token store of a data dir.
func NewStore(dataDir string) *Store { return &Store{Dir: filepath.Join(dataDir, "oauth")} }

// Saved is one account's stored sign-in.
type Saved struct {
	Provider     string    `json:"provider"`
	ClientID     string    `json:"client_id"`
	Account      string    `json:"account"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token"`
	Expiry       time.Time `json:"expiry"`
	Updated      time.Time `json:"updated"`
}

// Token returns the stored token.
func (s *Saved) Token() *oauth2.Token {
	return &oauth2.Token{AccessToken: s.AccessToken, TokenType: s.TokenType, RefreshToken: s.RefreshToken, Expiry: s.Expiry}
}

// String never shows the tokens.
func (s *Saved) String() string {
	return fmt.Sprintf("%s sign-in of %s (client %s, access token expires %s)", s.Provider, s.Account, s.ClientID, s.Expiry.Format(time.RFC3339))
}

// LogValue keeps the tokens out of log records.
func (s *Saved) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Path is the file of an account's sign-in.
func (st *Store) Path(provider, account string) string {
	return filepath.Join(st.Dir, provider+"-"+fileSafe(account)+".json")
}

// fileSafe keeps letters, digits and @._- of an account name (lower-cased)
// and replaces the rest.
func fileSafe(s string) string {
	s = strings.ToLower(s)
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("@._-", r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Load returns the stored sign-in of an account, or nil when there is none.
func (st *Store) Load(provider, account string) (*Saved, error) {
	p := st.Path(provider, account)
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("oauth: read %s: %w", p, err)
	}
	var s Saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oauth: %s is damaged; sign in again (popbridge login) to replace it", p)
	}
	return &s, nil
}

// Save stores an account's token (0600, atomically).
func (st *Store) Save(cfg Config, account string, tok *oauth2.Token) error {
	s := Saved{Provider: cfg.Provider, ClientID: cfg.ClientID, Account: account, AccessToken: tok.AccessToken,
		TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry.UTC(), Updated: time.Now().UTC().Truncate(time.Second)}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		return fmt.Errorf("oauth: token directory %s: %w", st.Dir, err)
	}
	p := st.Path(cfg.Provider, account)
	if err := fsutil.WriteFileAtomic(p, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("oauth: save sign-in: %w", err)
	}
	return nil
}

// Delete forgets an account's sign-in (absent is no error).
func (st *Store) Delete(provider, account string) error {
	if err := os.Remove(st.Path(provider, account)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
