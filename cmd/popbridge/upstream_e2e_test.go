package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/internal/testenv"
)

func appendUpstream(t testing.TB, cfgPath, section string) {
	t.Helper()
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprint(f, section)
}

// TestServeUpstreamErrors: the classic mistakes are reported at start-up in
// words a non-expert can act on, and the archive is served anyway.
func TestServeUpstreamErrors(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{TLS: true})
	user := dc.Users[0]
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(certFile, dc.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	closed := freePort(t)
	cases := []struct {
		name, section string
		want          []string
	}{
		{"wrong password", fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = \"not-the-password\"\n", dc.IMAPPort, user.Name),
			[]string{"127.0.0.1:" + fmt.Sprint(dc.IMAPPort), "app password"}},
		{"refused port", fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = \"x\"\npassword = \"y\"\n", closed),
			[]string{fmt.Sprintf("127.0.0.1:%d", closed), "refused"}},
		{"implicit TLS on the plain port", fmt.Sprintf("[upstream]\nhost = \"localhost\"\nport = %d\ntls = \"implicit\"\nca_cert = %q\nusername = %q\npassword = %q\n", dc.IMAPPort, certFile, user.Name, user.Password),
			[]string{fmt.Sprintf("localhost:%d", dc.IMAPPort), "starttls"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src, _ := filepath.Abs("../../testdata/archive/mbox/lf.mbox")
			cfgPath := writeConfig(t, dir, freePort(t), map[string]string{"lf": src}, "")
			appendUpstream(t, cfgPath, tc.section)
			cfg, _, err := LoadConfig(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			out := &syncBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(out, nil)), out) }()
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out.String(), "popbridge: upstream") && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond) // waiting for the start-up report
			}
			line := ""
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, "popbridge: upstream") {
					line = l
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.ToLower(line), strings.ToLower(w)) {
					t.Errorf("start-up message %q lacks %q", line, w)
				}
			}
			t.Logf("%s", line)
			if strings.Contains(out.String(), "not-the-password") {
				t.Error("the password reached the output")
			}
			// The archive is served regardless.
			rep, err := getStatus(cfg)
			if err != nil || !rep.Running {
				t.Errorf("bridge not serving the archive: %v", err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
}

// TestThirdPartyClientCopiesToServer: python's imaplib drags a message
// through the bridge; Dovecot receives it exactly once.
func TestThirdPartyClientCopiesToServer(t *testing.T) {
	testenv.RequireDovecot(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 not found: apt-get install -y python3")
		}
		t.Skip("python3 not found")
	}
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	user := dc.Users[0]
	dir := t.TempDir()
	port := freePort(t)
	src, _ := filepath.Abs("../../testdata/archive/mbox/lf.mbox")
	cfgPath := writeConfig(t, dir, port, map[string]string{"lf": src}, "")
	appendUpstream(t, cfgPath, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = %q\n", dc.IMAPPort, user.Name, user.Password))
	b := startBridge(t, cfgPath)
	c := b.client(t)
	local := fetchFolder(t, c, "Local/lf")
	script := fmt.Sprintf(`
import imaplib
m = imaplib.IMAP4("127.0.0.1", %d)
m.login("me", %q)
m.select('"Local/lf"')
for _ in range(2):
    typ, data = m.copy("1", "INBOX")
    print(typ)
m.logout()
`, port, testPassword)
	out, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	if string(out) != "OK\nOK\n" {
		t.Errorf("imaplib COPY answered %q", out)
	}
	msgs := dc.Messages(t, user.Name, "INBOX")
	if len(msgs) != 1 || string(msgs[0].Body) != string(local[0].Body) {
		t.Errorf("Dovecot INBOX has %d messages after two COPYs of one message; want exactly the archive's bytes once", len(msgs))
	}
}

// TestStatusNoQuota: with a server that reports no quota, status says so
// (and what it means) instead of saying nothing; -json has "none".
func TestStatusNoQuota(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	user := dc.Users[0]
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, freePort(t), archiveSource(t), "")
	appendUpstream(t, cfgPath, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = %q\npassword = %q\n", dc.IMAPPort, user.Name, user.Password))
	var out, errb strings.Builder
	if code := run([]string{"status", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("status: %d %s", code, errb.String())
	}
	if want := "Server quota: none — the server does not report a quota: popbridge cannot check that the mail will fit"; !strings.Contains(out.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	if code := run([]string{"status", "-json", "-config", cfgPath}, nil, &out, &errb); code != 0 {
		t.Fatalf("status -json: %d %s", code, errb.String())
	}
	var rep control.Status
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil || rep.Quota == nil || !rep.Quota.None {
		t.Errorf("status -json quota: %+v %v\n%s", rep.Quota, err, out.String())
	}
}
