package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/discover"
)

// Client talks to a running bridge's control endpoint. It implements API.
type Client struct {
	base  string
	token string
	http  *http.Client
	pid   int // the bridge's process, as its /ping said (Dial)
}

// NewClient returns a client for the endpoint at addr with token.
func NewClient(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{}}
}

// Dial connects to the bridge running on dataDir: ErrNoBridge when there
// is none. A control.json left by a bridge that died (SIGKILL, a power
// cut) is stale: its process is gone, nothing listens at its address, or
// someone else's server there refuses the token; Dial says ErrNoBridge
// for each, and the next bridge replaces the file.
func Dial(ctx context.Context, dataDir string) (*Client, error) {
	info, err := ReadInfo(dataDir)
	if err != nil {
		return nil, ErrNoBridge
	}
	if info.PID > 0 && !processAlive(info.PID) {
		return nil, ErrNoBridge
	}
	c := NewClient(info.Addr, info.Token)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var pong struct {
		PID int `json:"pid"`
	}
	if err := c.call(pctx, "GET", "/ping", nil, &pong); err != nil {
		var e *Error
		if errors.As(err, &e) && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Status == http.StatusNotFound) {
			// A recycled port: another program (or another popbridge,
			// with its own token) answers there.
			return nil, ErrNoBridge
		}
		return nil, err
	}
	c.pid = pong.PID
	return c, nil
}

// PID is the process of the bridge Dial reached (0 for a NewClient).
func (c *Client) PID() int { return c.pid }

// Addr is the endpoint's address.
func (c *Client) Addr() string { return strings.TrimPrefix(c.base, "http://") }

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("running bridge at %s did not answer: %w", c.Addr(), ctx.Err())
			}
			return nil, ctx.Err()
		}
		return nil, ErrNoBridge // a stale control.json: nothing listens there
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Code = CodeInternal
			e.Message = fmt.Sprintf("running bridge at %s: %s", c.Addr(), resp.Status)
		}
		return nil, e
	}
	return resp, nil
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("running bridge at %s: %w", c.Addr(), err)
	}
	return nil
}

func callTyped[R any](c *Client, ctx context.Context, method, path string, body any) (*R, error) {
	var out R
	if err := c.call(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Status implements API.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return callTyped[Status](c, ctx, "GET", "/status", nil)
}

// Index implements API.
func (c *Client) Index(ctx context.Context) (*backend.IndexReport, error) {
	return callTyped[backend.IndexReport](c, ctx, "POST", "/index", nil)
}

// Fetch implements API.
func (c *Client) Fetch(ctx context.Context, account string) (*FetchReport, error) {
	return callTyped[FetchReport](c, ctx, "POST", "/fetch?account="+url.QueryEscape(account), nil)
}

// Migrate implements API.
func (c *Client) Migrate(ctx context.Context, req MigrateRequest, fn func(MigrateEvent)) error {
	resp, err := c.do(ctx, "POST", "/migrate", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var ev MigrateEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("running bridge: %w", err)
		}
		if ev.Error != "" {
			return &Error{Code: ev.Code, Message: ev.Error}
		}
		fn(ev)
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// Verify implements API.
func (c *Client) Verify(ctx context.Context, req MigrateRequest) (*backend.VerifyReport, error) {
	return callTyped[backend.VerifyReport](c, ctx, "POST", "/verify", req)
}

// Dashboard implements API.
func (c *Client) Dashboard(ctx context.Context) (*Dashboard, error) {
	return callTyped[Dashboard](c, ctx, "GET", "/dashboard", nil)
}

// Events implements API: it reads the endpoint's Server-Sent Events.
func (c *Client) Events(ctx context.Context) (<-chan Event, error) {
	resp, err := c.do(ctx, "GET", "/events", nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan Event, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		ReadSSE(resp.Body, func(ev Event) bool {
			select {
			case ch <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return ch, nil
}

// ReadSSE reads Server-Sent Events carrying Events until r ends or fn
// returns false.
func ReadSSE(r io.Reader, fn func(Event) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if len(data) > 0 {
				var ev Event
				if json.Unmarshal(data, &ev) == nil && !fn(ev) {
					return nil
				}
			}
			data = data[:0]
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data, bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" "))...)
		}
	}
	return sc.Err()
}

// Plan implements API.
func (c *Client) Plan(ctx context.Context, req MigrateRequest) (*backend.Plan, error) {
	return callTyped[backend.Plan](c, ctx, "POST", "/plan", req)
}

// Migration implements API.
func (c *Client) Migration(ctx context.Context) (*MigrationState, error) {
	return callTyped[MigrationState](c, ctx, "GET", "/migration", nil)
}

// StartMigration implements API.
func (c *Client) StartMigration(ctx context.Context, req MigrateRequest) (*MigrationState, error) {
	return callTyped[MigrationState](c, ctx, "POST", "/migration/start", req)
}

// PauseMigration implements API.
func (c *Client) PauseMigration(ctx context.Context) (*MigrationState, error) {
	return callTyped[MigrationState](c, ctx, "POST", "/migration/pause", nil)
}

// ResumeMigration implements API.
func (c *Client) ResumeMigration(ctx context.Context) (*MigrationState, error) {
	return callTyped[MigrationState](c, ctx, "POST", "/migration/resume", nil)
}

// StartVerify implements API.
func (c *Client) StartVerify(ctx context.Context, req MigrateRequest) (*VerifyState, error) {
	return callTyped[VerifyState](c, ctx, "POST", "/verify/start", req)
}

// VerifyState implements API.
func (c *Client) VerifyState(ctx context.Context) (*VerifyState, error) {
	return callTyped[VerifyState](c, ctx, "GET", "/verify/state", nil)
}

// VerifyCSV implements API.
func (c *Client) VerifyCSV(ctx context.Context, w io.Writer) error {
	resp, err := c.do(ctx, "GET", "/verify/report.csv", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

// Settings implements API.
func (c *Client) Settings(ctx context.Context) (*Settings, error) {
	return callTyped[Settings](c, ctx, "GET", "/settings", nil)
}

// SaveSettings implements API.
func (c *Client) SaveSettings(ctx context.Context, ch SettingsChange) (*Settings, error) {
	return callTyped[Settings](c, ctx, "POST", "/settings", ch)
}

// FindStores implements API.
func (c *Client) FindStores(ctx context.Context) ([]discover.Store, error) {
	var out []discover.Store
	err := c.call(ctx, "GET", "/stores", nil, &out)
	return out, err
}

// ScanStore implements API.
func (c *Client) ScanStore(ctx context.Context, st discover.Store) (*discover.Scan, error) {
	return callTyped[discover.Scan](c, ctx, "POST", "/stores/scan", st)
}

// Browse implements API.
func (c *Client) Browse(ctx context.Context, dir string) (*Listing, error) {
	return callTyped[Listing](c, ctx, "GET", "/browse?dir="+url.QueryEscape(dir), nil)
}

// TestUpstream implements API.
func (c *Client) TestUpstream(ctx context.Context, t UpstreamTest) (*UpstreamResult, error) {
	return callTyped[UpstreamResult](c, ctx, "POST", "/upstream/test", t)
}

// SetDevicePassword implements API.
func (c *Client) SetDevicePassword(ctx context.Context, req DevicePasswordRequest) (*DevicePassword, error) {
	return callTyped[DevicePassword](c, ctx, "POST", "/device-password", req)
}

// Devices implements API.
func (c *Client) Devices(ctx context.Context) (*Devices, error) {
	return callTyped[Devices](c, ctx, "GET", "/devices", nil)
}

// SetDeviceAccount implements API.
func (c *Client) SetDeviceAccount(ctx context.Context, a DeviceAccount) (*Devices, error) {
	return callTyped[Devices](c, ctx, "POST", "/devices/account", a)
}

// MobileConfig implements API.
func (c *Client) MobileConfig(ctx context.Context, host string) ([]byte, error) {
	resp, err := c.do(ctx, "GET", "/devices/mobileconfig?host="+url.QueryEscape(host), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 4<<20))
}

// CACertificate implements API.
func (c *Client) CACertificate(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, "GET", "/devices/ca.pem", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// ConsoleURL implements API.
func (c *Client) ConsoleURL(ctx context.Context) (string, error) {
	var s string
	err := c.call(ctx, "POST", "/console-url", nil, &s)
	return s, err
}

// System implements API.
func (c *Client) System(ctx context.Context) (*System, error) {
	return callTyped[System](c, ctx, "GET", "/system", nil)
}

// SetSystem implements API.
func (c *Client) SetSystem(ctx context.Context, ch SystemChange) (*System, error) {
	return callTyped[System](c, ctx, "POST", "/system", ch)
}

// UninstallPlan implements API.
func (c *Client) UninstallPlan(ctx context.Context) (*UninstallPlan, error) {
	return callTyped[UninstallPlan](c, ctx, "GET", "/system/uninstall", nil)
}

// Log implements API.
func (c *Client) Log(ctx context.Context, lines int) (*Log, error) {
	return callTyped[Log](c, ctx, "GET", "/system/log?lines="+strconv.Itoa(lines), nil)
}

// TestPOP implements API.
func (c *Client) TestPOP(ctx context.Context, t POPTest) (*POPResult, error) {
	return callTyped[POPResult](c, ctx, "POST", "/pop3/test", t)
}

var (
	_ API = (*Client)(nil)
	_ API = (*Service)(nil)
)
