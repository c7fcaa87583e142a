package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/discover"
)

// API is what the CLI and the console can ask of popbridge. *Service
// implements it in-process, *Client over the control endpoint.
type API interface {
	// Status is what `popbridge status` prints.
	Status(ctx context.Context) (*Status, error)
	// Index re-indexes the archives now.
	Index(ctx context.Context) (*backend.IndexReport, error)
	// Fetch runs one POP3 round for account ("" = every account).
	Fetch(ctx context.Context, account string) (*FetchReport, error)
	// Migrate plans and (unless DryRun) runs a migration in the foreground,
	// reporting the plan, progress and result to fn. Cancelling ctx pauses
	// it.
	Migrate(ctx context.Context, req MigrateRequest, fn func(MigrateEvent)) error
	// Verify proves that every in-scope legacy message is on the server.
	Verify(ctx context.Context, req MigrateRequest) (*backend.VerifyReport, error)

	// Dashboard is the console's overview, cheap to ask for repeatedly.
	Dashboard(ctx context.Context) (*Dashboard, error)
	// Events delivers live updates until ctx ends (the channel is closed).
	Events(ctx context.Context) (<-chan Event, error)

	// Plan computes what a migration with req would do.
	Plan(ctx context.Context, req MigrateRequest) (*backend.Plan, error)
	// Migration returns the state of the current or last migration.
	Migration(ctx context.Context) (*MigrationState, error)
	// StartMigration starts a migration in the background.
	StartMigration(ctx context.Context, req MigrateRequest) (*MigrationState, error)
	// PauseMigration stops the running migration; ResumeMigration goes on.
	PauseMigration(ctx context.Context) (*MigrationState, error)
	ResumeMigration(ctx context.Context) (*MigrationState, error)
	// StartVerify runs verify in the background; VerifyState reports it.
	StartVerify(ctx context.Context, req MigrateRequest) (*VerifyState, error)
	VerifyState(ctx context.Context) (*VerifyState, error)
	// VerifyCSV writes the last verify report (every missing message) as
	// CSV.
	VerifyCSV(ctx context.Context, w io.Writer) error

	// Settings returns the configuration as the console shows it (no
	// secrets: only whether each is set).
	Settings(ctx context.Context) (*Settings, error)
	// SaveSettings changes the configuration file and applies it.
	SaveSettings(ctx context.Context, ch SettingsChange) (*Settings, error)
	// FindStores lists the mail stores found on this machine.
	FindStores(ctx context.Context) ([]discover.Store, error)
	// ScanStore counts the folders and messages of one store.
	ScanStore(ctx context.Context, st discover.Store) (*discover.Scan, error)
	// Browse lists a directory inside the user's home (the folder picker).
	Browse(ctx context.Context, dir string) (*Listing, error)
	// TestUpstream logs in to a mail server with the given settings.
	TestUpstream(ctx context.Context, t UpstreamTest) (*UpstreamResult, error)
	// SetDevicePassword sets the password devices use to log in to the
	// bridge (generated when Password is empty) and returns it, once.
	SetDevicePassword(ctx context.Context, req DevicePasswordRequest) (*DevicePassword, error)
	// Devices is what devices need to connect.
	Devices(ctx context.Context) (*Devices, error)
	// SetDeviceAccount keeps the address and outgoing server devices get.
	SetDeviceAccount(ctx context.Context, a DeviceAccount) (*Devices, error)
	// MobileConfig is an Apple configuration profile for host (one of
	// Devices().Hosts).
	MobileConfig(ctx context.Context, host string) ([]byte, error)
	// CACertificate is popbridge's local CA certificate (PEM), what a
	// device installs to trust the bridge's TLS certificate; never its
	// key. CodeNothing when the bridge serves the user's own certificate
	// ([listen] tls_cert): popbridge then has no CA to offer.
	CACertificate(ctx context.Context) ([]byte, error)
	// ConsoleURL returns a fresh login URL of the web console (with a
	// one-time token).
	ConsoleURL(ctx context.Context) (string, error)
	// System reports the desktop features (autostart, uninstall, sign-in,
	// quit) this build offers; SetSystem changes them (and quits
	// popbridge: SystemChange.Quit).
	System(ctx context.Context) (*System, error)
	SetSystem(ctx context.Context, ch SystemChange) (*System, error)
	// UninstallPlan says what an uninstall would remove and what stays.
	UninstallPlan(ctx context.Context) (*UninstallPlan, error)
	// Log returns the last lines (at most 1000) of popbridge's log.
	Log(ctx context.Context, lines int) (*Log, error)
	// TestPOP logs in to an old POP account with the given settings.
	TestPOP(ctx context.Context, t POPTest) (*POPResult, error)
}

// ErrNoBridge means no running bridge answered on the control endpoint.
var ErrNoBridge = errors.New("no running bridge")

// Error is an API error: Code is stable (the console picks its words by
// it), Message is popbridge's English wording with the details.
type Error struct {
	Code    string            `json:"code"`
	Message string            `json:"error"`
	Params  map[string]string `json:"params,omitempty"`
	Status  int               `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Error codes.
const (
	CodeBadRequest   = "bad-request"
	CodeNoUpstream   = "no-upstream"
	CodeNotRunning   = "not-running"   // the bridge could not start or is restarting
	CodeBusy         = "busy"          // a migration or verify already runs
	CodeNothing      = "nothing"       // nothing to pause, resume, download
	CodeNotFound     = "not-found"     // no such account, folder, host
	CodeOutsideHome  = "outside-home"  // the folder picker stays in the user's files
	CodeNoSettings   = "no-settings"   // this process cannot change the configuration
	CodeInvalid      = "invalid"       // the configuration would not be valid
	CodeOverQuota    = "over-quota"    // the plan does not fit the server
	CodeUnsupported  = "unsupported"   // not offered by this build
	CodeInternal     = "internal"      // anything else
	CodeUnauthorized = "unauthorized"  // wrong or missing token
	CodeWeakPassword = "weak-password" // a device password that is too short
	CodeAutostart    = "autostart"     // autostart could not be changed: Params["reason"] says why
	CodeRefused      = "refused"       // uninstall will not delete the data dir: Params["reason"] says why
	CodeSignIn       = "sign-in"       // a browser sign-in cannot start
)

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of an *Error in err's chain, CodeInternal
// otherwise.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, backend.ErrNoUpstream) {
		return CodeNoUpstream
	}
	return CodeInternal
}

// Status is what `popbridge status` prints (and `status -json` shows).
type Status struct {
	Version  string                 `json:"version"`
	Running  bool                   `json:"running"`
	Indexed  time.Time              `json:"indexed"` // end of the last complete index run (zero: in progress)
	Folders  []backend.FolderStatus `json:"folders"`
	Quota    *Quota                 `json:"quota,omitempty"`
	POP3     []pop3.AccountStatus   `json:"pop3,omitempty"`
	Problems []string               `json:"problems,omitempty"`
	// Console is the web console's address (host:port), "" when it is off
	// or the bridge is not running.
	Console string `json:"console,omitempty"`
	// Control is the control endpoint's address.
	Control string `json:"control,omitempty"`
}

// Quota is the server's storage quota in bytes.
type Quota struct {
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
	Error string `json:"error,omitempty"`
	// None: the server reports no quota (no QUOTA capability, or no
	// storage limit), so popbridge cannot check that the mail will fit.
	None    bool      `json:"none,omitempty"`
	Checked time.Time `json:"checked,omitzero"`
}

// NoQuotaText is what popbridge says about a server without a quota.
const NoQuotaText = "the server does not report a quota: popbridge cannot check that the mail will fit"

// FetchReport is what `fetch -once` prints.
type FetchReport struct {
	Accounts []FetchAccount `json:"accounts"`
}

// FetchAccount is one POP3 account's round.
type FetchAccount struct {
	Name   string           `json:"name"`
	Result pop3.RoundResult `json:"result"`
	Error  string           `json:"error,omitempty"`
}

// MigrateRequest selects what migrate and verify look at. Dates are
// YYYY-MM-DD in local time; empty fields take the [migrate] defaults.
type MigrateRequest struct {
	Since   string   `json:"since,omitempty"`
	Before  string   `json:"before,omitempty"`
	Folders []string `json:"folders,omitempty"`
	Move    bool     `json:"move,omitempty"`
	DryRun  bool     `json:"dry_run,omitempty"`
	// Years > 0 means "only the last Years years": Since becomes the same
	// day Years years ago (Since must then be empty).
	Years int `json:"years,omitempty"`
	// Content makes verify compare every message's full bytes with the
	// server's (read from the server, streamed; slower).
	Content bool `json:"content,omitempty"`
}

// MigrateEvent is one step of a foreground migration (one NDJSON line on
// the control endpoint).
type MigrateEvent struct {
	Plan     *backend.Plan            `json:"plan,omitempty"`
	Progress *backend.MigrateProgress `json:"progress,omitempty"`
	Result   *backend.MigrateResult   `json:"result,omitempty"`
	Verify   *backend.VerifyReport    `json:"verify,omitempty"`
	Error    string                   `json:"error,omitempty"`
	Code     string                   `json:"code,omitempty"`
}

// Dashboard is the console's live overview.
type Dashboard struct {
	Version string `json:"version"`
	// State is "running", "starting" (the bridge is (re)starting) or
	// "stopped" (it could not start: StartError says why).
	State      string    `json:"state"`
	StartError string    `json:"start_error,omitempty"`
	Configured bool      `json:"configured"` // setup is complete (a device user exists)
	Indexed    time.Time `json:"indexed,omitzero"`
	// Folders are the legacy folders (archive and bridge-owned).
	Folders []FolderRow `json:"folders"`
	Totals  FolderRow   `json:"totals"`
	// ServerFolders counts the upstream folders.
	ServerFolders int             `json:"server_folders"`
	Upstream      string          `json:"upstream,omitempty"` // host, when configured
	Quota         *Quota          `json:"quota,omitempty"`
	POP3          []POPRow        `json:"pop3,omitempty"`
	Clients       []ClientRow     `json:"clients"`
	Problems      []Problem       `json:"problems"`
	Migration     *MigrationState `json:"migration,omitempty"`
	Verify        *VerifySummary  `json:"verify,omitempty"`
	// Elapsed is how long producing this took (for the benchmark and the
	// curious).
	Elapsed time.Duration `json:"elapsed"`
}

// FolderRow is one line of the dashboard's folder table.
type FolderRow struct {
	Name      string `json:"name"`
	Source    string `json:"source,omitempty"`
	Messages  int    `json:"messages"`
	Bytes     int64  `json:"bytes"`
	OnServer  int    `json:"on_server"`
	ToGo      int    `json:"to_go"`
	ToGoBytes int64  `json:"to_go_bytes"`
	Missing   bool   `json:"missing,omitempty"`
}

// POPRow is one old POP account on the dashboard.
type POPRow struct {
	pop3.AccountStatus
	Host string `json:"host,omitempty"`
}

// ClientRow is one connected IMAP client.
type ClientRow struct {
	User   string    `json:"user"`
	Remote string    `json:"remote"`
	TLS    bool      `json:"tls"`
	Since  time.Time `json:"since"`
}

// Problem is something the user should know, in words the console picks
// by Kind: archive (a file could not be read), archive-locked (its mail
// program holds it open), login-refused (a device used a wrong password),
// upstream (the mail server), pop3 (an old POP account), start (the bridge
// could not start), migrate, verify.
type Problem struct {
	Kind   string            `json:"kind"`
	Params map[string]string `json:"params,omitempty"`
	Detail string            `json:"detail"` // popbridge's English wording
	// Texts, when set, is the whole message by language ("en", "ja"), from
	// the part of popbridge that words it (a sign-in to renew: kind
	// sign-in).
	Texts map[string]string `json:"texts,omitempty"`
	At    time.Time         `json:"at,omitzero"`
	Count int               `json:"count,omitempty"`
}

// MigrationState is the current or last migration.
type MigrationState struct {
	// State is idle (never ran), running, pausing, paused, done (all in
	// scope is on the server), incomplete (it ended with messages left:
	// see Result), or failed (Error).
	State   string         `json:"state"`
	Request MigrateRequest `json:"request"`
	Origin  string         `json:"origin,omitempty"` // "console" or "cli"
	Started time.Time      `json:"started,omitzero"`
	Updated time.Time      `json:"updated,omitzero"`
	// Progress over the messages in scope (processed: uploaded or found on
	// the server); it survives a restart.
	Done        int    `json:"done"`
	Total       int    `json:"total"`
	Bytes       int64  `json:"bytes"`
	TotalBytes  int64  `json:"total_bytes"`
	Folder      string `json:"folder,omitempty"`
	FolderDone  int    `json:"folder_done,omitempty"`
	FolderTotal int    `json:"folder_total,omitempty"`
	// Elapsed is the time spent migrating (pauses and downtime excluded).
	Elapsed time.Duration `json:"elapsed"`
	// Rate is bytes per second lately; ETA the time left at that rate (0
	// when unknown).
	Rate   float64                `json:"rate"`
	ETA    time.Duration          `json:"eta"`
	Plan   *backend.Plan          `json:"plan,omitempty"`
	Result *backend.MigrateResult `json:"result,omitempty"`
	Error  string                 `json:"error,omitempty"`
	Code   string                 `json:"code,omitempty"`
}

// Running reports whether a migration is under way.
func (m *MigrationState) Running() bool {
	return m != nil && (m.State == "running" || m.State == "pausing")
}

// VerifyState is the current or last verify run.
type VerifyState struct {
	State    string                `json:"state"` // idle, running, done, failed
	Request  MigrateRequest        `json:"request"`
	Started  time.Time             `json:"started,omitzero"`
	Finished time.Time             `json:"finished,omitzero"`
	Report   *backend.VerifyReport `json:"report,omitempty"` // Missing trimmed to the first 100
	Missing  int                   `json:"missing"`          // all missing messages
	Error    string                `json:"error,omitempty"`
	Code     string                `json:"code,omitempty"`
	// Progress is how far a running verify has read the server.
	Progress *backend.VerifyProgress `json:"progress,omitempty"`
}

// VerifySummary is the dashboard's view of the last verify.
type VerifySummary struct {
	State    string    `json:"state"`
	OK       bool      `json:"ok"`
	Missing  int       `json:"missing"`
	Finished time.Time `json:"finished,omitzero"`
}

// Event is one live update. Type names what changed: dashboard (refetch
// it), migration (Migration is the new state), verify, settings, stores.
type Event struct {
	Type      string          `json:"type"`
	Migration *MigrationState `json:"migration,omitempty"`
	Verify    *VerifyState    `json:"verify,omitempty"`
}

// Settings is the configuration as the console shows it. Secrets are never
// included: only whether each is set.
type Settings struct {
	ConfigPath string `json:"config_path"`
	DataDir    string `json:"data_dir"`
	// Configured: a device user exists (setup can be left).
	Configured bool             `json:"configured"`
	Prefix     string           `json:"prefix"`
	Sources    []SourceSetting  `json:"sources"`
	Upstream   *UpstreamSetting `json:"upstream,omitempty"`
	POP3       []POPSetting     `json:"pop3"`
	Users      []UserSetting    `json:"users"`
	Listen     ListenSetting    `json:"listen"`
	Console    string           `json:"console"` // [console] listen; "" = off
	Migrate    MigrateSetting   `json:"migrate"`
}

// SourceSetting is one [[archive.sources]].
type SourceSetting struct {
	Path   string `json:"path"`
	Format string `json:"format"`
	Name   string `json:"name,omitempty"`
}

// UpstreamSetting is [upstream] without its secret.
type UpstreamSetting struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"`
	Username string `json:"username"`
	Auth     string `json:"auth"`
	// PasswordSet: a password (inline, file or command) or token command
	// is configured. PasswordFrom says which: password, password_file,
	// password_command or oauth2_token_command.
	PasswordSet  bool   `json:"password_set"`
	PasswordFrom string `json:"password_from,omitempty"`
	CACert       string `json:"ca_cert,omitempty"`
	Insecure     bool   `json:"insecure_skip_verify,omitempty"`
	// OAuth2 is [upstream.oauth2]: the account signs in in the browser.
	OAuth2 *OAuth2Setting `json:"oauth2,omitempty"`
}

// OAuth2Setting is an [….oauth2] table without its client secret.
type OAuth2Setting struct {
	Provider        string `json:"provider"` // "microsoft", "google"
	ClientID        string `json:"client_id"`
	Tenant          string `json:"tenant,omitempty"`
	ClientSecretSet bool   `json:"client_secret_set"`
}

// POPSetting is one [[pop3]] without its secret.
type POPSetting struct {
	Name            string `json:"name"`
	Host            string `json:"host"`
	Port            int    `json:"port"`
	TLS             string `json:"tls"`
	Username        string `json:"username"`
	PasswordSet     bool   `json:"password_set"`
	LeaveOnServer   bool   `json:"leave_on_server"`
	DeleteAfterDays int    `json:"delete_after_days,omitempty"`
	DeliverTo       string `json:"deliver_to"`
	IntervalMinutes int    `json:"interval_minutes"`
	// OAuth2 is the provider of [pop3.oauth2] ("microsoft", "google"):
	// the account signs in in the browser, not with a password. Saving
	// the account without a password keeps it so.
	OAuth2 string `json:"oauth2,omitempty"`
}

// UserSetting is one [[users]] without its hash.
type UserSetting struct {
	Name        string `json:"name"`
	PasswordSet bool   `json:"password_set"`
}

// ListenSetting is [listen].
type ListenSetting struct {
	IMAP  string `json:"imap"`  // "" = off
	IMAPS string `json:"imaps"` // "" = off
	// LAN: a listener accepts connections from the local network.
	LAN bool `json:"lan"`
}

// MigrateSetting is [migrate] (the parts the console shows).
type MigrateSetting struct {
	Since      string `json:"since,omitempty"`
	Before     string `json:"before,omitempty"`
	DailyLimit int64  `json:"daily_limit,omitempty"`
}

// SettingsChange changes parts of the configuration; nil fields stay as
// they are. Passwords are write-only: an empty password keeps the stored
// one.
type SettingsChange struct {
	Sources  *[]SourceSetting `json:"sources,omitempty"`
	Upstream *UpstreamChange  `json:"upstream,omitempty"`
	POP3     *[]POPChange     `json:"pop3,omitempty"`
	// LAN switches the IMAP listeners between this computer only and the
	// local network.
	LAN *bool `json:"lan,omitempty"`
	// Users replaces [[users]] (Service.SetDevicePassword builds it).
	Users *[]UserChange `json:"users,omitempty"`
}

// UpstreamChange sets [upstream]; Remove deletes it.
type UpstreamChange struct {
	Remove   bool   `json:"remove,omitempty"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"`
	Username string `json:"username"`
	Auth     string `json:"auth,omitempty"`
	Password string `json:"password,omitempty"` // "" keeps the stored one
	// OAuth2 makes the account sign in in the browser ([upstream.oauth2])
	// instead of a password. Without it, an account that signs in so
	// keeps doing so unless a Password is given.
	OAuth2 *OAuth2Change `json:"oauth2,omitempty"`
}

// OAuth2Change sets an [….oauth2] table. ClientSecret is write-only: ""
// keeps the stored one (of the same provider and client).
type OAuth2Change struct {
	Provider     string `json:"provider"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	Tenant       string `json:"tenant,omitempty"`
}

// POPChange is one [[pop3]]; accounts not listed are removed. An account
// keeps its stored password when Password is "" and OldName names it.
type POPChange struct {
	OldName         string `json:"old_name,omitempty"`
	Name            string `json:"name"`
	Host            string `json:"host"`
	Port            int    `json:"port"`
	TLS             string `json:"tls"`
	Username        string `json:"username"`
	Password        string `json:"password,omitempty"`
	LeaveOnServer   bool   `json:"leave_on_server"`
	DeleteAfterDays int    `json:"delete_after_days,omitempty"`
	DeliverTo       string `json:"deliver_to,omitempty"`
}

// UserChange is one [[users]]: a new hash, or "" to keep the stored one.
type UserChange struct {
	Name         string `json:"name"`
	PasswordHash string `json:"password_hash,omitempty"`
	OldName      string `json:"old_name,omitempty"`
}

// Listing is one directory of the folder picker.
type Listing struct {
	Dir     string  `json:"dir"`
	Parent  string  `json:"parent,omitempty"` // "" at the top (the home directory)
	Home    string  `json:"home"`
	Entries []Entry `json:"entries"`
}

// Entry is one directory or mail file in a Listing.
type Entry struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Dir  bool   `json:"dir"`
	// Format is the archive format the entry looks like ("" when it does
	// not look like mail).
	Format string `json:"format,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// UpstreamTest is what "Test connection" sends. An empty Password uses the
// stored one (when Host and Username match the configuration).
type UpstreamTest struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"`
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

// UpstreamResult is what "Test connection" found.
type UpstreamResult struct {
	OK bool `json:"ok"`
	// Kind is the failure class (auth, tls, connect, timeout,
	// login-disabled, privacy-required, protocol, credentials, config,
	// sign-in) when !OK; Detail popbridge's wording of it; Texts the
	// message by language where the part that failed words it (sign-in).
	Kind    string            `json:"kind,omitempty"`
	Detail  string            `json:"detail,omitempty"`
	Texts   map[string]string `json:"texts,omitempty"`
	Host    string            `json:"host"`
	Port    int               `json:"port"`
	Quota   *Quota            `json:"quota,omitempty"`
	Folders int               `json:"folders"`
	// SpecialUse maps \Sent, \Drafts, \Trash, \Junk, \Archive to the
	// server's folder with that role.
	SpecialUse map[string]string `json:"special_use,omitempty"`
	Elapsed    time.Duration     `json:"elapsed"`
}

// DevicePasswordRequest sets a device user's password. Password "" means
// generate one.
type DevicePasswordRequest struct {
	User     string `json:"user,omitempty"` // default: the first user, or the mail address
	Password string `json:"password,omitempty"`
}

// DevicePassword is the password just set, shown once.
type DevicePassword struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// Devices is what devices need to connect to the bridge.
type Devices struct {
	User      string     `json:"user,omitempty"`
	Email     string     `json:"email,omitempty"`
	Listeners []Listener `json:"listeners"`
	// LAN: the listeners accept the local network; Hosts are the names and
	// addresses a device can use (this machine's LAN addresses first when
	// LAN, else 127.0.0.1).
	LAN   bool     `json:"lan"`
	Hosts []string `json:"hosts"`
	// CAFingerprint is the SHA-256 of popbridge's local CA (the one
	// CACertificate returns), "" when there is none.
	CAFingerprint string `json:"ca_fingerprint,omitempty"`
	// OwnCert is the user's own certificate file ([listen] tls_cert) when
	// the bridge serves it: there is no popbridge CA then, the devices
	// must trust whoever issued it. OwnCertFingerprint is its SHA-256.
	OwnCert            string `json:"own_cert,omitempty"`
	OwnCertFingerprint string `json:"own_cert_fingerprint,omitempty"`
	// ServerFingerprint is the SHA-256 of the certificate the listeners
	// serve now: what an app that shows only the server's certificate
	// (not its CA) asks the user to accept.
	ServerFingerprint string `json:"server_fingerprint,omitempty"`
	// CanProfile: a configuration profile can be made (a listener, a CA,
	// an email address and an outgoing server are known); ProfileProblem
	// says what is missing otherwise.
	CanProfile     bool   `json:"can_profile"`
	ProfileProblem string `json:"profile_problem,omitempty"`
	// Account is what a device's mail app is set up with besides the
	// bridge: the address and the provider's outgoing server.
	Account DeviceAccount `json:"account"`
}

// DeviceAccount is what devices need besides the bridge: the user's
// address and name for sent mail and the provider's outgoing (SMTP)
// server, which popbridge does not replace. Kept in data_dir/devices.json.
type DeviceAccount struct {
	Email        string `json:"email"`
	DisplayName  string `json:"display_name,omitempty"`
	SMTPHost     string `json:"smtp_host,omitempty"`
	SMTPPort     int    `json:"smtp_port,omitempty"`
	SMTPTLS      string `json:"smtp_tls,omitempty"`
	SMTPUsername string `json:"smtp_username,omitempty"`
}

// Listener is one IMAP listener.
type Listener struct {
	Kind string `json:"kind"` // "imaps" (TLS from the start) or "imap" (STARTTLS)
	Addr string `json:"addr"` // bound address
	Port int    `json:"port"`
}

// POPTest is what the old POP account's "Test connection" sends. An
// empty Password uses the stored one of the account with the same host and
// user name.
type POPTest struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"`
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
}

// POPResult is what the POP "Test connection" found.
type POPResult struct {
	OK bool `json:"ok"`
	// Kind is the failure class when !OK: auth, tls, connect, timeout,
	// protocol, credentials, config; Detail popbridge's wording of it.
	Kind   string `json:"kind,omitempty"`
	Detail string `json:"detail,omitempty"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// Messages and Bytes are what the mailbox holds (STAT).
	Messages int           `json:"messages"`
	Bytes    int64         `json:"bytes"`
	Elapsed  time.Duration `json:"elapsed"`
}

// System is what the desktop integration offers (a nil hook means the
// feature is not offered by this build).
type System struct {
	Autostart *bool `json:"autostart,omitempty"` // nil: not offered
	// AutostartError says why the entry could not be looked at.
	AutostartError string `json:"autostart_error,omitempty"`
	// AutostartMethod and AutostartWhere say how and where the entry is
	// installed (registry-run, launchagent, systemd-user, xdg-autostart;
	// a file or registry value).
	AutostartMethod string `json:"autostart_method,omitempty"`
	AutostartWhere  string `json:"autostart_where,omitempty"`
	// AutostartProblems stop the entry from working as the user expects
	// (a moved program, an entry turned off by the system); AutostartNotes
	// are remarks on what the last change did.
	AutostartProblems []SystemNote `json:"autostart_problems,omitempty"`
	AutostartNotes    []SystemNote `json:"autostart_notes,omitempty"`
	Uninstall         bool         `json:"uninstall"`         // an uninstall is offered
	Quit              bool         `json:"quit"`              // popbridge can be quit from here
	SignInProviders   []string     `json:"sign_in_providers"` // "microsoft", "google"
	LogFile           string       `json:"log_file,omitempty"`
	// SignIn is the browser sign-in of the new mailbox ([upstream.oauth2]);
	// nil when it signs in with a password.
	SignIn *SignIn `json:"sign_in,omitempty"`
	// SignInURL answers SystemChange.SignIn: the provider's page, opened
	// in the browser (for a link, should it not have opened).
	SignInURL string `json:"sign_in_url,omitempty"`
	// UninstallScheduled: popbridge is stopping after an uninstall;
	// Uninstalled says what was and will be removed.
	UninstallScheduled bool             `json:"uninstall_scheduled,omitempty"`
	Uninstalled        *UninstallReport `json:"uninstalled,omitempty"`
	// Stopping answers a SystemChange that quits popbridge: it stops
	// right after this answer (the console and the control endpoint go
	// away with it).
	Stopping bool `json:"stopping,omitempty"`
}

// SystemNote is one remark: Code is stable (the console words it),
// Params fill its words, Text is popbridge's English.
type SystemNote struct {
	Code   string            `json:"code"`
	Text   string            `json:"text"`
	Params map[string]string `json:"params,omitempty"`
}

// SignIn is the state of a browser sign-in.
type SignIn struct {
	Provider string `json:"provider"` // "microsoft", "google"
	Account  string `json:"account"`
	// State is signed-in, waiting (the browser sign-in is under way),
	// needed (not signed in yet, or the provider withdrew the sign-in:
	// sign in again) or error (Detail says what went wrong).
	State string `json:"state"`
	// Reason is why a sign-in is needed (not-signed-in, revoked,
	// client-changed, declined, failed).
	Reason string `json:"reason,omitempty"`
	// Texts says it in plain words, by language ("en", "ja").
	Texts   map[string]string `json:"texts,omitempty"`
	Detail  string            `json:"detail,omitempty"`
	Expires time.Time         `json:"expires,omitzero"` // the current access token's
	URL     string            `json:"url,omitempty"`    // while waiting: the provider's page
}

// Sign-in states.
const (
	SignedIn      = "signed-in"
	SignInWaiting = "waiting"
	SignInNeeded  = "needed"
	SignInError   = "error"
)

// UninstallPlan is what an uninstall would do.
type UninstallPlan struct {
	AutostartOn    bool   `json:"autostart_on"`
	AutostartWhere string `json:"autostart_where,omitempty"`
	DataDir        string `json:"data_dir"`
	DataExists     bool   `json:"data_exists"`
	DataBytes      int64  `json:"data_bytes"`
	// OwnMessages are messages copied or moved into Local/… that live
	// only in the data dir (the bridge's own Maildir): deleted with it.
	OwnMessages int `json:"own_messages"`
	// Refused says why the data dir cannot be deleted (English);
	// RefusedCode which reason: path, root, home, archive, running.
	Refused     string `json:"refused,omitempty"`
	RefusedCode string `json:"refused_code,omitempty"`
	// What always stays: the archives, the config file, the program.
	Archives []string `json:"archives"`
	Config   string   `json:"config,omitempty"`
	Program  string   `json:"program,omitempty"`
}

// UninstallReport is what an uninstall did, and what it does once
// popbridge has stopped.
type UninstallReport struct {
	Removed []string `json:"removed"`
	Kept    []string `json:"kept"`
	Notes   []string `json:"notes,omitempty"`
	// DataDir is deleted once popbridge has stopped ("" when kept).
	DataDir string `json:"data_dir,omitempty"`
}

// Log is the end of popbridge's log.
type Log struct {
	File  string   `json:"file"`
	Lines []string `json:"lines"`
}

// SystemChange switches desktop features.
type SystemChange struct {
	Autostart *bool `json:"autostart,omitempty"`
	// Uninstall removes autostart and, with RemoveData, the data dir
	// (never the archives). popbridge keeps running unless Quit is set
	// too; RemoveData implies Quit (the data dir goes once popbridge has
	// let go of it).
	Uninstall  bool `json:"uninstall,omitempty"`
	RemoveData bool `json:"remove_data,omitempty"`
	// Quit stops popbridge cleanly (the bridge, the POP fetcher, the
	// console and the control endpoint) right after the answer, alone or
	// after an uninstall. It starts again as it was started the first
	// time, or by itself at the next login when autostart is on.
	Quit bool `json:"quit,omitempty"`
	// SignIn starts a browser sign-in of the new mailbox with this
	// provider (its [upstream.oauth2] must be saved first); the answer's
	// SignInURL is the provider's page, which popbridge opens.
	SignIn string `json:"sign_in,omitempty"`
}
