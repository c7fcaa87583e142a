package control

import (
	"context"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/fsutil"
	"github.com/popbridge/popbridge/internal/units"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/discover"
)

// Runtime is one start of the bridge: the account and what the
// configuration built around it. serve attaches it to the Service once the
// bridge runs.
type Runtime struct {
	Account *backend.Account
	// Upstream is the configured server ("host:port"), "" without
	// [upstream].
	Upstream string
	// Migrate holds the [migrate] defaults: Mapping, DailyLimit and the
	// Since/Before of the configuration.
	Migrate backend.MigrateOptions
	// POP is the old POP accounts; nil without any.
	POP POP
	// Listeners are the IMAP listeners as bound.
	Listeners []Listener
	// CACert is the local CA (DER) devices install, "" fingerprint and nil
	// when the user configured their own certificate.
	CACert        []byte
	CAFingerprint string
	// OwnCert is the user's own certificate file ([listen] tls_cert) the
	// bridge serves, OwnCertFingerprint the SHA-256 of the certificate in
	// it; "" with popbridge's CA.
	OwnCert            string
	OwnCertFingerprint string
	// ServerFingerprint returns the SHA-256 of the certificate the IMAP
	// listeners serve now (popbridge's renews itself); nil: unknown.
	ServerFingerprint func() string
	// Running is false in a CLI command that opened the data dir itself.
	Running bool
}

// POP is the old POP accounts of a Runtime.
type POP interface {
	// Status returns every account's saved status.
	Status() []pop3.AccountStatus
	// Fetch runs one round now for account ("" = all) and reports it.
	Fetch(ctx context.Context, account string) (*FetchReport, error)
	// Hosts maps account names to their host, for the dashboard.
	Hosts() map[string]string
}

// Host is what the composition root provides beyond a Runtime: the
// configuration file. A Service without a Host (a CLI command) cannot
// change settings.
type Host interface {
	// Settings reads the configuration as it is now.
	Settings() (*Settings, error)
	// SaveSettings validates ch against the configuration, writes the file
	// (mode 0600) and applies it. restart says that the bridge restarts
	// with it (the Service then waits for the new bridge before it answers).
	SaveSettings(ctx context.Context, ch SettingsChange) (restart bool, err error)
	// Secret returns a stored secret so that a connection test can use it:
	// "upstream" or "pop3:NAME". It never leaves the process.
	Secret(ctx context.Context, which string) (string, error)
}

// SystemHooks is the desktop integration (autostart, uninstall, sign-in,
// quit); see System and SystemChange. Nil in Options means none is
// offered.
type SystemHooks interface {
	System(ctx context.Context) (*System, error)
	SetSystem(ctx context.Context, ch SystemChange) (*System, error)
	UninstallPlan(ctx context.Context) (*UninstallPlan, error)
	Log(ctx context.Context, lines int) (*Log, error)
}

// Options configure a Service. Zero values get the documented defaults.
type Options struct {
	Version string
	// DataDir holds the job state (migration.json, verify-report.json).
	DataDir string
	Logger  *slog.Logger
	// Host changes the configuration; nil: settings are read-only
	// (Settings and SaveSettings fail with CodeNoSettings).
	Host Host
	// System is the desktop integration; nil offers none.
	System SystemHooks
	// Problems collects problems from the log (NewProblemLog); nil
	// collects none.
	Problems *ProblemLog
	// Env says where FindStores looks; zero means this machine (EnvFromOS).
	Env *discover.Env
	// Home is the root of the folder picker; default Env.Home.
	Home string
	// AttachWait is how long a call that needs the bridge waits for one to
	// be attached; default 30s.
	AttachWait time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service implements API in the process that holds the data dir.
type Service struct {
	opts Options
	log  *slog.Logger

	mu          sync.Mutex
	rt          *Runtime
	rtChanged   chan struct{} // closed and replaced when rt changes
	starts      int           // Attach and SetStartError calls: each start of the bridge ends in one
	startErr    error         // the bridge could not start
	consoleAddr string
	controlAddr string
	consoleURL  func() (string, error)

	hub     *hub
	clients clientSet
	quota   quotaCache
	mig     migration
	ver     verification
}

// NewService returns a Service without a Runtime.
func NewService(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.AttachWait <= 0 {
		opts.AttachWait = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Env == nil {
		env := EnvFromOS()
		opts.Env = &env
	}
	if opts.Home == "" {
		opts.Home = opts.Env.Home
	}
	s := &Service{opts: opts, log: opts.Logger, rtChanged: make(chan struct{})}
	s.hub = newHub(s)
	s.mig.s = s
	s.ver.s = s
	s.mig.load()
	s.ver.load()
	return s
}

// Attach makes rt the bridge the Service controls (replacing any) and
// resumes a console migration that was running when the last one stopped.
func (s *Service) Attach(rt *Runtime) {
	s.mu.Lock()
	s.rt = rt
	s.startErr = nil
	s.starts++
	close(s.rtChanged)
	s.rtChanged = make(chan struct{})
	s.mu.Unlock()
	s.quota.reset()
	s.hub.publish(Event{Type: "dashboard"})
	if rt.Running {
		s.mig.resumeAfterStart()
		// Count the folders once now, so the console's first overview is
		// as quick as the later ones (which only redo what changed).
		go rt.Account.FolderCounts()
	}
}

// Detach stops using the current Runtime (before a reload or shutdown):
// a running migration stops (and resumes at the next Attach); calls that
// need the bridge wait for the next Attach.
func (s *Service) Detach() {
	s.mig.stopForDetach()
	s.ver.stop()
	s.mu.Lock()
	s.rt = nil
	close(s.rtChanged)
	s.rtChanged = make(chan struct{})
	s.mu.Unlock()
	s.clients.reset()
	s.hub.publish(Event{Type: "dashboard"})
}

// SetStartError records why the bridge could not start (nil clears it);
// calls that need it fail at once with that reason.
func (s *Service) SetStartError(err error) {
	s.mu.Lock()
	s.startErr = err
	if err != nil {
		s.starts++
	}
	close(s.rtChanged)
	s.rtChanged = make(chan struct{})
	s.mu.Unlock()
	s.hub.publish(Event{Type: "dashboard"})
}

// SetAddrs records where the control endpoint and the console listen
// (for Status) and how to make a console login URL.
func (s *Service) SetAddrs(control, console string, consoleURL func() (string, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if control != "" {
		s.controlAddr = control
	}
	s.consoleAddr = console
	s.consoleURL = consoleURL
}

// runtime returns the attached Runtime, waiting up to AttachWait for one.
func (s *Service) runtime(ctx context.Context) (*Runtime, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		rt, startErr, changed := s.rt, s.startErr, s.rtChanged
		s.mu.Unlock()
		if rt != nil {
			return rt, nil
		}
		if startErr != nil {
			return nil, &Error{Code: CodeNotRunning, Message: "the bridge is not running: " + startErr.Error(), Status: 503}
		}
		if timer == nil {
			timer = time.NewTimer(s.opts.AttachWait)
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, &Error{Code: CodeNotRunning, Message: "the bridge is starting; try again in a moment", Status: 503}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// waitStart waits until the bridge started (or failed to) after start
// number n, for at most limit.
func (s *Service) waitStart(ctx context.Context, n int, limit time.Duration) {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		s.mu.Lock()
		done, changed := s.starts > n, s.rtChanged
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// current returns the attached Runtime without waiting (nil if none).
func (s *Service) current() *Runtime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt
}

// Status implements API.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	folders, err := rt.Account.Status()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	rep := &Status{Version: s.opts.Version, Running: rt.Running, Indexed: rt.Account.LastIndexed(), Folders: folders,
		Problems: rt.Account.Problems(), Console: s.consoleAddr, Control: s.controlAddr}
	s.mu.Unlock()
	if rt.POP != nil {
		rep.POP3 = rt.POP.Status()
	}
	if rt.Upstream != "" {
		qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		rep.Quota = s.quota.fetch(qctx, rt)
		cancel()
	}
	return rep, nil
}

// Index implements API.
func (s *Service) Index(ctx context.Context) (*backend.IndexReport, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := rt.Account.Index(ctx, nil)
	if err == nil && rep.Messages > 0 {
		s.hub.publish(Event{Type: "dashboard"})
	}
	return rep, err
}

// Fetch implements API.
func (s *Service) Fetch(ctx context.Context, account string) (*FetchReport, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if rt.POP == nil {
		return nil, &Error{Code: CodeNotFound, Message: "no [[pop3]] accounts are configured", Status: 404}
	}
	rep, err := rt.POP.Fetch(ctx, account)
	s.hub.publish(Event{Type: "dashboard"})
	return rep, err
}

// options turns a request into backend options on top of the [migrate]
// defaults.
func (s *Service) options(rt *Runtime, r MigrateRequest) (backend.MigrateOptions, error) {
	o := backend.MigrateOptions{Folders: r.Folders, Move: r.Move, Mapping: rt.Migrate.Mapping, DailyLimit: rt.Migrate.DailyLimit,
		Since: rt.Migrate.Since, Before: rt.Migrate.Before, Content: r.Content}
	var err error
	if r.Since != "" {
		if o.Since, err = parseDay(r.Since, "since"); err != nil {
			return o, err
		}
	}
	if r.Before != "" {
		if o.Before, err = parseDay(r.Before, "before"); err != nil {
			return o, err
		}
	}
	if r.Years < 0 {
		return o, errorf(CodeBadRequest, "years must be positive")
	}
	if r.Years > 0 {
		if r.Since != "" {
			return o, errorf(CodeBadRequest, "give either since or years, not both")
		}
		now := s.opts.Now().In(time.Local)
		o.Since = time.Date(now.Year()-r.Years, now.Month(), now.Day(), 0, 0, 0, 0, time.Local)
	}
	if !o.Since.IsZero() && !o.Before.IsZero() && !o.Since.Before(o.Before) {
		return o, errorf(CodeBadRequest, "since (%s) must be before before (%s)", o.Since.Format(time.DateOnly), o.Before.Format(time.DateOnly))
	}
	return o, nil
}

func parseDay(s, name string) (time.Time, error) {
	t, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("-%s %q: use YYYY-MM-DD", name, s), Params: map[string]string{"field": name}}
	}
	return t, nil
}

// Plan implements API.
func (s *Service) Plan(ctx context.Context, req MigrateRequest) (*backend.Plan, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if rt.Upstream == "" {
		return nil, &Error{Code: CodeNoUpstream, Message: backend.ErrNoUpstream.Error(), Status: 409}
	}
	o, err := s.options(rt, req)
	if err != nil {
		return nil, err
	}
	return rt.Account.PlanMigration(ctx, o)
}

// Verify implements API: a verify run in the foreground (the console sees
// it too).
func (s *Service) Verify(ctx context.Context, req MigrateRequest) (*backend.VerifyReport, error) {
	return s.ver.run(ctx, req)
}

// Migrate implements API.
func (s *Service) Migrate(ctx context.Context, req MigrateRequest, fn func(MigrateEvent)) error {
	if req.DryRun {
		plan, err := s.Plan(ctx, req)
		if err != nil {
			return err
		}
		fn(MigrateEvent{Plan: plan})
		if !plan.Fits {
			return &Error{Code: CodeOverQuota, Message: "not starting: " + QuotaRefusal(plan), Status: 409}
		}
		return nil
	}
	return s.mig.foreground(ctx, req, fn)
}

// Events implements API.
func (s *Service) Events(ctx context.Context) (<-chan Event, error) {
	return s.hub.subscribe(ctx), nil
}

// ConsoleURL implements API.
func (s *Service) ConsoleURL(ctx context.Context) (string, error) {
	s.mu.Lock()
	f := s.consoleURL
	s.mu.Unlock()
	if f == nil {
		return "", &Error{Code: CodeUnsupported, Message: `the console is off ([console] listen = "off")`, Status: 404}
	}
	return f()
}

// System implements API.
func (s *Service) System(ctx context.Context) (*System, error) {
	if s.opts.System == nil {
		return &System{SignInProviders: []string{}}, nil
	}
	return s.opts.System.System(ctx)
}

var errNoSystem = &Error{Code: CodeUnsupported, Message: "this popbridge has no desktop integration (it runs without the console's shell)", Status: 404}

// SetSystem implements API.
func (s *Service) SetSystem(ctx context.Context, ch SystemChange) (*System, error) {
	if s.opts.System == nil {
		return nil, errNoSystem
	}
	sys, err := s.opts.System.SetSystem(ctx, ch)
	if err == nil {
		s.SystemChanged()
	}
	return sys, err
}

// SystemChanged tells the console that System changed (a sign-in in the
// browser finished, autostart was switched).
func (s *Service) SystemChanged() { s.hub.publish(Event{Type: "system"}) }

// UninstallPlan implements API.
func (s *Service) UninstallPlan(ctx context.Context) (*UninstallPlan, error) {
	if s.opts.System == nil {
		return nil, errNoSystem
	}
	return s.opts.System.UninstallPlan(ctx)
}

// maxLogLines bounds Log.
const maxLogLines = 1000

// Log implements API.
func (s *Service) Log(ctx context.Context, lines int) (*Log, error) {
	if s.opts.System == nil {
		return nil, errNoSystem
	}
	if lines <= 0 {
		lines = 200
	}
	return s.opts.System.Log(ctx, min(lines, maxLogLines))
}

// ClientConnected records an IMAP client that logged in; call the
// returned function when its session ends.
func (s *Service) ClientConnected(user, remote string, tls bool) (done func()) {
	remove := s.clients.add(ClientRow{User: user, Remote: remote, TLS: tls, Since: s.opts.Now()})
	s.hub.publish(Event{Type: "dashboard"})
	return func() {
		remove()
		s.hub.publish(Event{Type: "dashboard"})
	}
}

// writeFileAtomic writes data to path (mode 0600) through a temporary
// file, so a crash leaves the old or the new content.
func writeFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

// clientSet is the connected IMAP clients.
type clientSet struct {
	mu   sync.Mutex
	next int
	m    map[int]ClientRow
}

func (c *clientSet) add(row ClientRow) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[int]ClientRow{}
	}
	c.next++
	id := c.next
	c.m[id] = row
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.m, id)
			c.mu.Unlock()
		})
	}
}

func (c *clientSet) reset() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

func (c *clientSet) list() []ClientRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ClientRow, 0, len(c.m))
	for _, r := range c.m {
		out = append(out, r)
	}
	sortClients(out)
	return out
}

// quotaCache remembers the server's quota for a few minutes (a failure
// for less): asking costs a round trip, and the dashboard asks often. A
// bridge restart (Attach) forgets it, and an answer from before the restart
// is dropped.
type quotaCache struct {
	mu       sync.Mutex
	q        *Quota
	gen      int // bumped by reset
	fetching bool
}

const (
	quotaTTL      = 5 * time.Minute
	quotaErrorTTL = 30 * time.Second
)

func (c *quotaCache) reset() {
	c.mu.Lock()
	c.q = nil
	c.gen++
	c.mu.Unlock()
}

// fetch asks the server now.
func (c *quotaCache) fetch(ctx context.Context, rt *Runtime) *Quota {
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	used, limit, ok, err := rt.Account.Quota(ctx)
	q := &Quota{Used: used, Limit: limit, Checked: time.Now()}
	switch {
	case err != nil:
		q = &Quota{Error: err.Error(), Checked: time.Now()}
	case !ok || limit <= 0:
		q = &Quota{None: true, Checked: time.Now()}
	}
	c.mu.Lock()
	if c.gen == gen {
		c.q = q
	}
	c.mu.Unlock()
	return q
}

// cached returns the last quota (nil: not known yet) and whether it is
// fresh.
func (c *quotaCache) cached() (*Quota, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.q == nil {
		return nil, false
	}
	ttl := quotaTTL
	if c.q.Error != "" {
		ttl = quotaErrorTTL
	}
	return c.q, time.Since(c.q.Checked) < ttl
}

// refresh fetches the quota in the background (once at a time) and calls
// done when it has it.
func (c *quotaCache) refresh(rt *Runtime, done func()) {
	c.mu.Lock()
	if c.fetching {
		c.mu.Unlock()
		return
	}
	c.fetching = true
	c.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.fetch(ctx, rt)
		cancel()
		c.mu.Lock()
		c.fetching = false
		c.mu.Unlock()
		done()
	}()
}

// QuotaRefusal says in words why a plan does not fit the server.
func QuotaRefusal(p *backend.Plan) string {
	free := max(p.QuotaLimit-p.QuotaUsed, 0)
	s := fmt.Sprintf("the plan needs %s on the server, only %s of %s is free (%s missing)", HumanBytes(p.Need), HumanBytes(free), HumanBytes(p.QuotaLimit), HumanBytes(p.Need-free))
	if p.FitHint != "" {
		s += "; this filter would fit: " + p.FitHint
	}
	return s
}

// isLockedText reports whether an error text says a file is held open by
// another program (Windows sharing violations: Outlook keeps its .pst
// open).
func isLockedText(s string) bool {
	l := strings.ToLower(s)
	return strings.Contains(l, "being used by another process") || strings.Contains(l, "locked a portion of the file")
}

var errNoSettings = &Error{Code: CodeNoSettings, Message: "this popbridge process cannot change the configuration (start the bridge, or edit popbridge.toml)", Status: 409}

// asError maps err to an *Error for the wire.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Status == 0 {
			e.Status = statusFor(e.Code)
		}
		return e
	}
	code := CodeOf(err)
	return &Error{Code: code, Message: err.Error(), Status: statusFor(code)}
}

func statusFor(code string) int {
	switch code {
	case CodeBadRequest, CodeInvalid, CodeWeakPassword, CodeOutsideHome:
		return 400
	case CodeUnauthorized:
		return 401
	case CodeNotFound, CodeUnsupported:
		return 404
	case CodeBusy, CodeNothing, CodeNoUpstream, CodeNoSettings, CodeOverQuota:
		return 409
	case CodeNotRunning:
		return 503
	}
	return 500
}

// HumanBytes formats a size for people (units.Bytes).
func HumanBytes(n int64) string { return units.Bytes(n) }
