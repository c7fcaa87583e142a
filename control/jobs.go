package control

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/popbridge/popbridge/backend"
	"github.com/popbridge/popbridge/backend/upstream"
)

// State files in the data dir.
const (
	migrationFile    = "migration.json"
	verifyReportFile = VerifyReportFile
	verifyStateFile  = "verify-state.json"
)

// VerifyReportFile is where the last verify's full report is kept in the
// data dir (JSON, backend.VerifyReport).
const VerifyReportFile = "verify-report.json"

// migration is the one migration job: started from the console (in the
// background) or from `popbridge migrate` (in the foreground, through the
// API), paused and resumed, with progress kept in data_dir/migration.json.
//
// A resumed run plans again from the server's state (the backend never
// uploads twice) and walks the same folders in the same order, so what was
// done goes by quickly; the progress shown is the larger of what was done
// before and what this run has done, and so never goes back.
type migration struct {
	s *Service

	mu       sync.Mutex
	loaded   bool
	st       MigrationState
	cancel   context.CancelFunc // the running run
	done     chan struct{}      // closed when it has ended
	pauseReq bool               // the user paused it
	detached bool               // Detach stopped it: resume at Attach
	base     struct {
		done  int
		bytes int64
	}
	elapsedBase time.Duration
	runStart    time.Time
	samples     []rateSample
	lastPoint   rateSample // the last progress (or the plan) of this run
	lastSave    time.Time
	lastPub     time.Time
}

type rateSample struct {
	at    time.Time
	bytes int64
}

// rateWindow is how far back the transfer rate is measured.
const rateWindow = 30 * time.Second

func (m *migration) path() string {
	if m.s.opts.DataDir == "" {
		return ""
	}
	return filepath.Join(m.s.opts.DataDir, migrationFile)
}

func (m *migration) load() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loaded = true
	m.st = MigrationState{State: "idle"}
	if p := m.path(); p != "" {
		if b, err := os.ReadFile(p); err == nil {
			var st MigrationState
			if json.Unmarshal(b, &st) == nil && st.State != "" {
				m.st = st
			}
		}
	}
	if m.st.State == "pausing" {
		m.st.State = "paused"
	}
	// A state saved before a rate was known shows the average so far.
	if m.st.Rate <= 0 && m.st.Elapsed > 0 && m.st.Bytes > 0 && m.st.State != "done" {
		m.st.Rate = float64(m.st.Bytes) / m.st.Elapsed.Seconds()
	}
}

// saveLocked writes the state file.
func (m *migration) saveLocked() {
	m.lastSave = time.Now()
	p := m.path()
	if p == "" {
		return
	}
	b, _ := json.MarshalIndent(&m.st, "", "  ")
	if err := writeFileAtomic(p, b); err != nil {
		m.s.log.Warn("cannot save the migration state", "file", p, "err", err)
	}
}

func (m *migration) publishLocked() {
	m.lastPub = time.Now()
	st := m.st
	m.s.hub.publish(Event{Type: "migration", Migration: &st})
}

// state returns a copy of the current state.
func (m *migration) state() *MigrationState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.st
	return &st
}

// begin marks a run as started; resume keeps the progress of the last
// one. parent's end stops the run.
func (m *migration) begin(parent context.Context, req MigrateRequest, origin string, resume bool) (context.Context, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		by := "the console"
		if m.st.Origin == "cli" {
			by = "popbridge migrate"
		}
		return nil, &Error{Code: CodeBusy, Message: "a migration is already running (started from " + by + "); pause it or wait for it to finish", Status: 409}
	}
	now := m.s.opts.Now()
	if !resume {
		m.st = MigrationState{Request: req, Started: now}
	}
	m.st.State = "running"
	m.st.Origin = origin
	m.st.Request = req
	m.st.Updated = now
	m.st.Result = nil
	m.st.Error, m.st.Code = "", ""
	m.base.done, m.base.bytes = m.st.Done, m.st.Bytes
	m.elapsedBase = m.st.Elapsed
	m.runStart = time.Now()
	m.samples = m.samples[:0]
	m.pauseReq, m.detached = false, false
	ctx, cancel := context.WithCancel(parent)
	m.cancel = cancel
	m.done = make(chan struct{})
	m.saveLocked()
	m.publishLocked()
	return ctx, nil
}

// run plans and migrates; it reports to fn (nil for a background run).
func (m *migration) run(ctx context.Context, req MigrateRequest, fn func(MigrateEvent)) (err error) {
	var res *backend.MigrateResult
	defer func() { m.finish(ctx, res, err) }()
	rt, err := m.s.runtime(ctx)
	if err != nil {
		return err
	}
	if rt.Upstream == "" {
		return &Error{Code: CodeNoUpstream, Message: backend.ErrNoUpstream.Error(), Status: 409}
	}
	o, err := m.s.options(rt, req)
	if err != nil {
		return err
	}
	plan, err := rt.Account.PlanMigration(ctx, o)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.st.Plan = plan
	total, totalB := 0, int64(0)
	for _, f := range plan.Folders {
		total += f.InScope
		totalB += f.Bytes
	}
	m.st.Total, m.st.TotalBytes = total, totalB
	m.st.Done, m.st.Bytes = min(m.st.Done, total), min(m.st.Bytes, totalB)
	m.lastPoint = rateSample{time.Now(), 0}
	m.publishLocked()
	m.mu.Unlock()
	if fn != nil {
		fn(MigrateEvent{Plan: plan})
	}
	if !plan.Fits {
		return &Error{Code: CodeOverQuota, Message: "not starting: " + QuotaRefusal(plan), Status: 409}
	}
	o.Progress = func(p backend.MigrateProgress) {
		m.progress(p)
		if fn != nil {
			fn(MigrateEvent{Progress: &p})
		}
	}
	res, err = rt.Account.Migrate(ctx, plan, o)
	if res != nil && fn != nil {
		fn(MigrateEvent{Result: res})
	}
	return err
}

// progress takes one progress report of the backend.
func (m *migration) progress(p backend.MigrateProgress) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	st := &m.st
	st.Total, st.TotalBytes = p.Total, p.TotalB
	st.Done = min(max(m.base.done, p.Done), p.Total)
	st.Bytes = min(max(m.base.bytes, p.Bytes), p.TotalB)
	st.Folder, st.FolderDone, st.FolderTotal = p.Folder, p.FolderDone, p.FolderTotal
	st.Elapsed = m.elapsedBase + p.Elapsed
	st.Updated = m.s.opts.Now()
	// The rate counts new work only: what a resumed run walks past again
	// goes by at disk speed.
	if p.Done > m.base.done {
		if len(m.samples) == 0 {
			m.samples = append(m.samples, m.lastPoint)
		}
		m.samples = append(m.samples, rateSample{now, p.Bytes})
		for len(m.samples) > 2 && now.Sub(m.samples[1].at) > rateWindow {
			m.samples = m.samples[1:]
		}
		if n := len(m.samples); n >= 2 {
			first, last := m.samples[0], m.samples[n-1]
			if d := last.at.Sub(first.at).Seconds(); d > 0.5 {
				st.Rate = float64(last.bytes-first.bytes) / d
			}
		}
		// Until the window has half a second in it, the run's average
		// stands in (a fast first half-second still gets an ETA).
		if st.Rate == 0 && p.Elapsed > 0 && p.Bytes > m.base.bytes {
			st.Rate = float64(p.Bytes-m.base.bytes) / p.Elapsed.Seconds()
		}
	}
	m.lastPoint = rateSample{now, p.Bytes}
	st.ETA = 0
	if st.Rate > 0 && st.TotalBytes > st.Bytes {
		st.ETA = time.Duration(float64(st.TotalBytes-st.Bytes) / st.Rate * float64(time.Second)).Round(time.Second)
	}
	if now.Sub(m.lastSave) >= time.Second {
		m.saveLocked()
	}
	if now.Sub(m.lastPub) >= 250*time.Millisecond {
		m.publishLocked()
	}
}

// finish records how a run ended.
func (m *migration) finish(ctx context.Context, res *backend.MigrateResult, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &m.st
	st.Updated = m.s.opts.Now()
	if res != nil {
		st.Result = res
	}
	if m.runStart.IsZero() {
		m.runStart = time.Now()
	}
	switch {
	case ctx.Err() != nil && m.detached:
		// Stays "running" in the file: the next start resumes it.
		st.State = "running"
	case ctx.Err() != nil:
		st.State = "paused"
	case err != nil:
		st.State = "failed"
		st.Error = err.Error()
		st.Code = CodeOf(err)
		var ue *upstream.Error
		if errors.As(err, &ue) {
			st.Code = "upstream-" + ue.Kind.String()
		}
	case res != nil && res.Complete:
		st.State = "done"
		st.Done, st.Bytes = st.Total, st.TotalBytes
		st.ETA = 0
		st.Folder, st.FolderDone, st.FolderTotal = "", 0, 0
	default:
		st.State = "incomplete"
		if res != nil && res.Stopped != "" {
			st.Error = res.Stopped
		}
	}
	if st.State != "running" {
		st.ETA = 0
	}
	m.cancel = nil
	if m.done != nil {
		close(m.done)
		m.done = nil
	}
	m.saveLocked()
	m.publishLocked()
	if st.State == "done" {
		// What was uploaded changes the quota.
		m.s.quota.reset()
	}
}

// foreground runs a migration for `popbridge migrate`.
func (m *migration) foreground(ctx context.Context, req MigrateRequest, fn func(MigrateEvent)) error {
	rctx, err := m.begin(ctx, req, "cli", false)
	if err != nil {
		return err
	}
	err = m.run(rctx, req, fn)
	if err == nil && rctx.Err() != nil && ctx.Err() == nil {
		return errors.New("the migration was paused from the console")
	}
	return err
}

// background starts a run that outlives the request.
func (m *migration) background(req MigrateRequest, resume bool) (*MigrationState, error) {
	ctx, err := m.begin(context.Background(), req, "console", resume)
	if err != nil {
		return nil, err
	}
	go m.run(ctx, req, nil)
	return m.state(), nil
}

// resumeAfterStart continues a console migration that was running when the
// bridge last stopped; one started by `popbridge migrate` is shown as
// paused instead.
func (m *migration) resumeAfterStart() {
	m.mu.Lock()
	st := m.st
	running := m.cancel != nil
	if !running && st.State == "running" && st.Origin != "console" {
		m.st.State = "paused"
		m.saveLocked()
	}
	m.mu.Unlock()
	if running || st.State != "running" || st.Origin != "console" {
		return
	}
	if _, err := m.background(st.Request, true); err != nil {
		m.s.log.Warn("cannot resume the migration", "err", err)
	} else {
		m.s.log.Info("migration resumed where it stopped", "done", st.Done, "total", st.Total)
	}
}

// stopForDetach stops a run before the bridge goes away and waits for it.
func (m *migration) stopForDetach() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	if cancel != nil {
		m.detached = true
	}
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	waitDone(done, 60*time.Second)
}

func waitDone(done chan struct{}, limit time.Duration) {
	if done == nil {
		return
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// StartMigration implements API.
func (s *Service) StartMigration(ctx context.Context, req MigrateRequest) (*MigrationState, error) {
	rt, err := s.runtime(ctx)
	if err != nil {
		return nil, err
	}
	if rt.Upstream == "" {
		return nil, &Error{Code: CodeNoUpstream, Message: backend.ErrNoUpstream.Error(), Status: 409}
	}
	if _, err := s.options(rt, req); err != nil {
		return nil, err
	}
	req.DryRun = false
	return s.mig.background(req, false)
}

// PauseMigration implements API.
func (s *Service) PauseMigration(ctx context.Context) (*MigrationState, error) {
	m := &s.mig
	m.mu.Lock()
	if m.cancel == nil {
		m.mu.Unlock()
		return nil, &Error{Code: CodeNothing, Message: "no migration is running", Status: 409}
	}
	m.pauseReq = true
	m.st.State = "pausing"
	m.publishLocked()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	cancel()
	// Usually quick: the backend stops between batches.
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	return m.state(), nil
}

// ResumeMigration implements API.
func (s *Service) ResumeMigration(ctx context.Context) (*MigrationState, error) {
	if _, err := s.runtime(ctx); err != nil {
		return nil, err
	}
	st := s.mig.state()
	switch st.State {
	case "paused", "incomplete", "failed", "running":
	default:
		return nil, &Error{Code: CodeNothing, Message: "there is no paused migration to resume", Status: 409}
	}
	return s.mig.background(st.Request, true)
}

// Migration implements API.
func (s *Service) Migration(ctx context.Context) (*MigrationState, error) {
	return s.mig.state(), nil
}

// verification is the one verify job; its last report is kept in
// data_dir/verify-report.json (the file `popbridge verify` writes by
// default) and its state in verify-state.json.
type verification struct {
	s      *Service
	mu     sync.Mutex
	st     VerifyState
	cancel context.CancelFunc
	done   chan struct{}
}

// verifyShown is how many missing messages VerifyState carries (the CSV
// has them all).
const verifyShown = 100

func (v *verification) file(name string) string {
	if v.s.opts.DataDir == "" {
		return ""
	}
	return filepath.Join(v.s.opts.DataDir, name)
}

func (v *verification) load() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st = VerifyState{State: "idle"}
	if p := v.file(verifyStateFile); p != "" {
		if b, err := os.ReadFile(p); err == nil {
			var st VerifyState
			if json.Unmarshal(b, &st) == nil && st.State != "" {
				v.st = st
			}
		}
	}
	if v.st.State == "running" {
		v.st.State = "idle" // it ended with the process
	}
	if rep, err := v.readReport(); err == nil && v.st.State == "done" {
		v.st.Report = trimReport(rep)
		v.st.Missing = len(rep.Missing)
	}
}

func (v *verification) readReport() (*backend.VerifyReport, error) {
	p := v.file(verifyReportFile)
	if p == "" {
		return nil, errors.New("no data dir")
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rep backend.VerifyReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &rep, nil
}

func trimReport(rep *backend.VerifyReport) *backend.VerifyReport {
	c := *rep
	if len(c.Missing) > verifyShown {
		c.Missing = c.Missing[:verifyShown]
	}
	return &c
}

func (v *verification) saveLocked() {
	p := v.file(verifyStateFile)
	if p == "" {
		return
	}
	st := v.st
	st.Report = nil
	b, _ := json.MarshalIndent(&st, "", "  ")
	if err := writeFileAtomic(p, b); err != nil {
		v.s.log.Warn("cannot save the verify state", "file", p, "err", err)
	}
}

func (v *verification) publishLocked() {
	st := v.st
	v.s.hub.publish(Event{Type: "verify", Verify: &st})
}

// begin registers a verify run; a second one while one is going is
// refused.
func (v *verification) begin(parent context.Context, req MigrateRequest) (context.Context, *Runtime, backend.MigrateOptions, error) {
	var o backend.MigrateOptions
	rt, err := v.s.runtime(parent)
	if err != nil {
		return nil, nil, o, err
	}
	if rt.Upstream == "" {
		return nil, nil, o, &Error{Code: CodeNoUpstream, Message: backend.ErrNoUpstream.Error(), Status: 409}
	}
	if o, err = v.s.options(rt, req); err != nil {
		return nil, nil, o, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cancel != nil {
		return nil, nil, o, &Error{Code: CodeBusy, Message: "verify is already running", Status: 409}
	}
	rctx, cancel := context.WithCancel(parent)
	v.cancel = cancel
	v.done = make(chan struct{})
	v.st = VerifyState{State: "running", Request: req, Started: v.s.opts.Now()}
	v.saveLocked()
	v.publishLocked()
	return rctx, rt, o, nil
}

// exec runs a verify that begin registered and records its report.
func (v *verification) exec(ctx context.Context, rt *Runtime, o backend.MigrateOptions) (*backend.VerifyReport, error) {
	var last time.Time
	o.VerifyProgress = func(p backend.VerifyProgress) {
		v.mu.Lock()
		defer v.mu.Unlock()
		v.st.Progress = &p
		if now := time.Now(); now.Sub(last) >= time.Second || p.Done == p.Total {
			last = now
			v.publishLocked()
		}
	}
	rep, err := rt.Account.Verify(ctx, o)
	if err == nil {
		if p := v.file(verifyReportFile); p != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if werr := writeFileAtomic(p, b); werr != nil {
				v.s.log.Warn("cannot save the verify report", "file", p, "err", werr)
			}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.st.Finished = v.s.opts.Now()
	switch {
	case err != nil && ctx.Err() != nil:
		v.st.State = "idle"
	case err != nil:
		v.st.State = "failed"
		v.st.Error = err.Error()
		v.st.Code = CodeOf(err)
	default:
		v.st.State = "done"
		v.st.Report = trimReport(rep)
		v.st.Missing = len(rep.Missing)
	}
	v.st.Progress = nil
	v.cancel()
	v.cancel = nil
	close(v.done)
	v.saveLocked()
	v.publishLocked()
	return rep, err
}

// run verifies in the caller's goroutine.
func (v *verification) run(ctx context.Context, req MigrateRequest) (*backend.VerifyReport, error) {
	rctx, rt, o, err := v.begin(ctx, req)
	if err != nil {
		return nil, err
	}
	return v.exec(rctx, rt, o)
}

func (v *verification) stop() {
	v.mu.Lock()
	cancel, done := v.cancel, v.done
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		waitDone(done, 30*time.Second)
	}
}

func (v *verification) summary() *VerifySummary {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.st.State == "idle" {
		return nil
	}
	sum := &VerifySummary{State: v.st.State, Missing: v.st.Missing, Finished: v.st.Finished}
	sum.OK = v.st.State == "done" && v.st.Report != nil && v.st.Report.OK
	return sum
}

// StartVerify implements API.
func (s *Service) StartVerify(ctx context.Context, req MigrateRequest) (*VerifyState, error) {
	rctx, rt, o, err := s.ver.begin(context.Background(), req)
	if err != nil {
		return nil, err
	}
	go s.ver.exec(rctx, rt, o)
	return s.VerifyState(ctx)
}

// VerifyState implements API.
func (s *Service) VerifyState(ctx context.Context) (*VerifyState, error) {
	s.ver.mu.Lock()
	defer s.ver.mu.Unlock()
	st := s.ver.st
	return &st, nil
}

// VerifyCSV implements API: every missing message of the last report.
func (s *Service) VerifyCSV(ctx context.Context, w io.Writer) error {
	rep, err := s.ver.readReport()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &Error{Code: CodeNothing, Message: "there is no verify report yet: run verify first", Status: 404}
		}
		return err
	}
	return WriteVerifyCSV(w, rep)
}

// WriteVerifyCSV writes the messages verify did not find as CSV (a header
// line, then folder, target, uid, date, from, subject, message_id, problem
// — "missing" or "differs" — and detail).
func WriteVerifyCSV(w io.Writer, rep *backend.VerifyReport) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"folder", "target", "uid", "date", "from", "subject", "message_id", "problem", "detail"})
	for _, m := range rep.Missing {
		cw.Write([]string{m.Folder, m.Target, fmt.Sprint(m.UID), m.Date.Format(time.RFC3339), m.From, m.Subject, m.MessageID, m.Problem, m.Detail})
	}
	cw.Flush()
	return cw.Error()
}
