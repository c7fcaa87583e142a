package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gopop3 "github.com/knadh/go-pop3"

	"github.com/popbridge/popbridge/backend/pop3"
	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/testenv"
)

func popTestMsg(i int) []byte {
	return []byte(fmt.Sprintf("From: s%d@example.com\r\nTo: alice@example.com\r\nSubject: fetch %d\r\nMessage-ID: <fetch-%d@example.com>\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\n\r\nbody %d\r\n", i, i, i, i))
}

func TestFetchOnce(t *testing.T) {
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{NoSpecialUse: true})
	user := dc.Users[0]
	for i := 1; i <= 3; i++ {
		dc.Append(t, user.Name, "INBOX", popTestMsg(i), nil, time.Time{})
	}

	// The old client's account directory: message 1 in its Inbox mbox,
	// message 2 only in its popstate.dat (UIDLs from the server).
	uidls := popUIDLs(t, dc)
	dir := t.TempDir()
	acctDir := filepath.Join(dir, "profile", "Mail", "pop.example.com")
	if err := os.MkdirAll(acctDir, 0o755); err != nil {
		t.Fatal(err)
	}
	m1 := strings.ReplaceAll(string(popTestMsg(1)), "\r\n", "\n")
	m1 = strings.Replace(m1, "\n\n", "\nX-UIDL: "+uidls[0]+"\n\n", 1)
	if err := os.WriteFile(filepath.Join(acctDir, "Inbox"), []byte("From - Mon Jan  2 15:04:05 2006\n"+m1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ps := fmt.Sprintf("# POP3 State File\n\n*127.0.0.1 %s\nk %s 1262304000\n", user.Name, uidls[1])
	if err := os.WriteFile(filepath.Join(acctDir, "popstate.dat"), []byte(ps), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "popbridge.toml")
	cfgText := fmt.Sprintf(`data_dir = %q

[[archive.sources]]
path = %q
format = "mbox"
name = "Inbox"

[[pop3]]
name = "old"
host = "127.0.0.1"
port = %d
tls = "none"
username = %q
password = %q
`, filepath.Join(dir, "data"), filepath.Join(acctDir, "Inbox"), dc.POP3Port, user.Name, user.Password)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := runFetch(args, nil, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := run("-config", cfgPath, "-once")
	t.Logf("popbridge fetch -once:\n%s", out)
	if code != 0 || !strings.Contains(out, "old: 3 on the server, fetched 1 (") || !strings.Contains(out, "2 already known") {
		t.Fatalf("first fetch: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = run("-config", cfgPath, "-once", "-account", "old")
	if code != 0 || !strings.Contains(out, "fetched 0 (0 bytes), 0 already known") {
		t.Fatalf("second fetch: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if code, _, errOut := run("-config", cfgPath, "-once", "-account", "nope"); code != 1 || !strings.Contains(errOut, `no [[pop3]] account named "nope" (configured: "old")`) {
		t.Errorf("unknown account: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run("-config", cfgPath); code != 2 || !strings.Contains(errOut, "-once is required") {
		t.Errorf("without -once: exit %d, %s", code, errOut)
	}
	if code, _, _ := run("-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}

	// With the data dir open (as serve has it): status, the control
	// endpoint's handler, and the loops.
	cfg, err := loadConfigFlag(cfgPath, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	sts := popStatus(a)
	if len(sts) != 1 || sts[0].Name != "old" || sts[0].Fetched != 1 || sts[0].Skipped != 2 || sts[0].OnServer != 3 || sts[0].LastError != "" {
		t.Errorf("status %+v", sts)
	}
	var buf bytes.Buffer
	printPOPStatus(&buf, sts)
	t.Logf("status:%s", buf.String())
	if !strings.Contains(buf.String(), "POP3 accounts:") || !strings.Contains(buf.String(), "old") {
		t.Errorf("printed status:\n%s", buf.String())
	}

	dc.Append(t, user.Name, "INBOX", popTestMsg(4), nil, time.Time{})
	// The control API's fetch, on the fetchers the loops use.
	svc := control.NewService(control.Options{DataDir: cfg.DataDir, Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(runtimeFor(a, true, nil, nil))
	rep, err := svc.Fetch(context.Background(), "old")
	if err != nil {
		t.Fatalf("control fetch: %v", err)
	}
	if len(rep.Accounts) != 1 || rep.Accounts[0].Error != "" || rep.Accounts[0].Result.Fetched != 1 {
		t.Errorf("control fetch: %+v", rep)
	}
	if _, err := svc.Fetch(context.Background(), "nope"); control.CodeOf(err) != control.CodeNotFound {
		t.Errorf("unknown account over control: %v", err)
	}

	dc.Append(t, user.Name, "INBOX", popTestMsg(5), nil, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	fs := startPOP(ctx, a, slog.New(slog.DiscardHandler))
	if len(fs) != 1 {
		t.Fatalf("%d fetchers", len(fs))
	}
	// The loop's first round runs at once; a manual round waits for it.
	if _, err := fs[0].Round(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	waitPOP(a)
	st, _ := pop3.Status(a.db, "old")
	if st.Fetched != 3 {
		t.Errorf("after the loop: %+v", st)
	}
}

func popUIDLs(t *testing.T, dc *testenv.Dovecot) []string {
	t.Helper()
	c, err := gopop3.New(gopop3.Opt{Host: dc.Host, Port: dc.POP3Port}).NewConn()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Auth(dc.Users[0].Name, dc.Users[0].Password); err != nil {
		t.Fatal(err)
	}
	ids, err := c.Uidl(0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, id := range ids {
		out = append(out, id.UID)
	}
	return out
}

func TestPopstateFiles(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) string {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("# POP3 State File\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := mk("profile/Mail/pop.a.com/popstate.dat")
	b := mk("profile/Mail/pop.b.com/popstate.dat")
	mk("profile/Mail/pop.b.com/Inbox")
	deep := mk("profile/x/y/z/w/v/popstate.dat") // too deep
	c := mk("single/popstate.dat")
	mbox := mk("single/Inbox")
	cfg := &Config{Archive: ArchiveConfig{Sources: []SourceConfig{
		{Path: filepath.Join(dir, "profile")},
		{Path: mbox},
		{Path: filepath.Join(dir, "profile", "Mail", "pop.a.com")}, // overlaps: listed once
		{Path: filepath.Join(dir, "missing")},
	}}}
	got := popstateFiles(cfg)
	want := []string{a, b, c}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("popstate files %q, want %q (not %q)", got, want, deep)
	}
}
