package imapemu

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Kind names an emulated provider.
type Kind string

const (
	KindGmail Kind = "gmail"
	KindM365  Kind = "m365"
)

type folderDef struct {
	name       string
	role       role
	specialUse imap.MailboxAttr
	system     bool
}

// profile is everything that differs between the providers: names, texts,
// capabilities and rules' parameters. See gmail.go and m365.go.
type profile struct {
	kind    Kind
	folders []folderDef

	greeting string                // after "* OK "
	preCaps  []string              // CAPABILITY before login
	postCaps func(Limits) []string // CAPABILITY after login
	// innerCaps steer go-imap's imapserver (literal handling, MOVE, ...);
	// clients see pre/postCaps, which the front answers itself.
	innerCaps imap.CapSet
	id        string // the ID response's parameter list

	loginOK   func(user string) string // status text of a successful LOGIN (after "OK ")
	loginNO   string                   // status after the tag of a failed LOGIN
	authOK    string
	authNO    string
	oauthJSON string // the XOAUTH2/OAUTHBEARER error challenge (decoded)
	logoutBye string
	badCmd    string // status after the tag for an unknown or misplaced command

	quota bool // answers GETQUOTAROOT/GETQUOTA (Gmail)

	tooBig       func(size, limit int64) error
	storageFull  error
	uploadLimit  error
	throttled    func(backoff time.Duration) string // status after the tag
	throttledBye string                             // "" or the BYE text sent after a throttled answer

	defaults Limits
}

// Limits are a provider's limits; zero fields take the provider's default
// (see StartGmail and StartM365), a negative value means "no limit".
type Limits struct {
	// MaxMessageSize refuses a larger APPEND (after reading it).
	MaxMessageSize int64
	// StorageBytes is the account's storage quota: an APPEND that would
	// exceed it is refused. Gmail reports it with QUOTA (STORAGE in KiB).
	StorageBytes int64
	// UploadBytesPerDay caps what APPEND may upload per day (the clock is
	// Options.Now, days in UTC); duplicates Gmail does not store count too.
	UploadBytesPerDay int64
	// CommandsPerWindow throttles: once a user has sent this many commands
	// in the current Window (on all connections), further commands are
	// answered with the provider's throttling response until the window
	// ends. 0 or negative: no throttling (the default for both providers).
	CommandsPerWindow int
	// Window defaults to one minute.
	Window time.Duration
}

// resolve fills zero fields from defaults and turns negative ones into 0
// (no limit).
func (l Limits) resolve(def Limits) Limits {
	pick := func(v, d int64) int64 {
		switch {
		case v < 0:
			return 0
		case v == 0:
			return d
		}
		return v
	}
	l.MaxMessageSize = pick(l.MaxMessageSize, def.MaxMessageSize)
	l.StorageBytes = pick(l.StorageBytes, def.StorageBytes)
	l.UploadBytesPerDay = pick(l.UploadBytesPerDay, def.UploadBytesPerDay)
	if l.CommandsPerWindow < 0 {
		l.CommandsPerWindow = 0
	}
	if l.Window <= 0 {
		l.Window = time.Minute
	}
	return l
}

func noErr(text string, code imap.ResponseCode) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

func sizeText(n int64) string { return fmt.Sprintf("%d bytes", n) }
