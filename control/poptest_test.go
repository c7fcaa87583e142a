package control

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/popbridge/popbridge/internal/testenv"
)

// popHost is a Host with one stored POP account.
type popHost struct {
	set    Settings
	secret string
}

func (h *popHost) Settings() (*Settings, error) { s := h.set; return &s, nil }
func (h *popHost) SaveSettings(context.Context, SettingsChange) (bool, error) {
	return false, nil
}
func (h *popHost) Secret(_ context.Context, which string) (string, error) {
	if which == "pop3:old" {
		return h.secret, nil
	}
	return "", fmt.Errorf("no secret %q", which)
}

// TestPOPTest: the old POP account's "Test connection" against a real
// Dovecot: it logs in and counts the mailbox, with the typed or the stored
// password; each classic mistake gets its class and plain words; nothing
// is sent in clear text over the network.
func TestPOPTest(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{TLS: true, Users: []testenv.DovecotUser{{Name: "oldpop", Password: "pop-Pw-5"}}})
	for i := 1; i <= 3; i++ {
		dc.Append(t, "oldpop", "INBOX", []byte(fmt.Sprintf("From: a@example.com\r\nSubject: %d\r\n\r\nbody %d\r\n", i, i)), nil, time.Now())
	}
	defer func(d time.Duration) { popGreetingTimeout = d }(popGreetingTimeout)
	popGreetingTimeout = time.Second
	host := &popHost{set: Settings{POP3: []POPSetting{{Name: "old", Host: "127.0.0.1", Port: dc.POP3Port, TLS: "none", Username: "oldpop", PasswordSet: true}}}, secret: "pop-Pw-5"}
	svc := NewService(Options{DataDir: t.TempDir(), Host: host, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	cases := []struct {
		name       string
		t          POPTest
		ok         bool
		kind, word string
	}{
		{"typed password", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "none", Username: "oldpop", Password: "pop-Pw-5"}, true, "", ""},
		{"stored password", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "none", Username: "oldpop"}, true, "", ""},
		{"STARTTLS", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "starttls", Username: "oldpop", Password: "pop-Pw-5"}, false, "tls", "not signed by a trusted authority"},
		{"wrong password", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "none", Username: "oldpop", Password: "wrong"}, false, "auth", "rejected the username or password"},
		{"nothing listening", POPTest{Host: "127.0.0.1", Port: closedPort, TLS: "none", Username: "oldpop", Password: "x"}, false, "connect", "connection refused"},
		{"SSL/TLS on the plain port", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "implicit", Username: "oldpop", Password: "x"}, false, "tls", "answered in plain text"},
		{"plain on the SSL/TLS port", POPTest{Host: "127.0.0.1", Port: dc.POP3SPort, TLS: "none", Username: "oldpop", Password: "x"}, false, "timeout", "no POP3 greeting"},
		{"no password", POPTest{Host: "127.0.0.1", Port: dc.POP3Port, TLS: "none", Username: "someone"}, false, "credentials", "type the password"},
		{"clear text over the network", POPTest{Host: "pop.example.com", Port: 110, TLS: "none", Username: "me", Password: "x"}, false, "config", "clear text"},
	}
	for _, tc := range cases {
		res, err := svc.TestPOP(ctx, tc.t)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if res.OK != tc.ok || res.Kind != tc.kind || !strings.Contains(res.Detail, tc.word) {
			t.Errorf("%s: %+v, want ok=%v kind %q saying %q", tc.name, res, tc.ok, tc.kind, tc.word)
		}
		if tc.ok && (res.Messages != 3 || res.Bytes <= 0) {
			t.Errorf("%s: %d messages, %d bytes, want 3", tc.name, res.Messages, res.Bytes)
		}
		if strings.Contains(res.Detail, "pop-Pw-5") {
			t.Errorf("%s: the password is in the answer", tc.name)
		}
	}
	if _, err := svc.TestPOP(ctx, POPTest{Host: "", Username: "x"}); CodeOf(err) != CodeBadRequest {
		t.Errorf("no host: %v", err)
	}
	// Nothing was fetched or deleted.
	if n := len(dc.Messages(t, "oldpop", "INBOX")); n != 3 {
		t.Errorf("%d messages left on the server, want 3", n)
	}
}

// TestNoQuota: a server without a quota is said to have none (status,
// the connection test), not left unsaid.
func TestNoQuota(t *testing.T) {
	testenv.RequireDovecot(t)
	dc := testenv.StartDovecot(t, testenv.DovecotOptions{})
	b := openBridge(t, t.TempDir(), nil, dc)
	defer b.close()
	svc := NewService(Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	svc.Attach(b.runtime())
	ctx := context.Background()
	st, err := svc.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Quota == nil || !st.Quota.None || st.Quota.Error != "" || st.Quota.Limit != 0 {
		t.Errorf("status quota %+v", st.Quota)
	}
	u := dc.Users[0]
	res, err := svc.TestUpstream(ctx, UpstreamTest{Host: "127.0.0.1", Port: dc.IMAPPort, TLS: "none", Username: u.Name, Password: u.Password})
	if err != nil || !res.OK || res.Quota == nil || !res.Quota.None {
		t.Errorf("test connection: %+v %v", res, err)
	}
}
