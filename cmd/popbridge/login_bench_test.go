package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/popbridge/popbridge/internal/testenv"
	"github.com/popbridge/popbridge/server"
)

// loginClients is how many clients run the login loop at once (issue 10:
// phones open several connections and reconnect often).
const loginClients = 10

// loginCycle connects, logs in, selects mailbox and logs out, checking
// every answer.
func loginCycle(addr, user, pass, mailbox string) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(conn)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting %q: %v", l, err)
	}
	for _, cmd := range []struct{ tag, line string }{
		{"a", fmt.Sprintf("LOGIN %q %q", user, pass)},
		{"b", fmt.Sprintf("SELECT %q", mailbox)},
		{"c", "LOGOUT"},
	} {
		if _, err := fmt.Fprintf(conn, "%s %s\r\n", cmd.tag, cmd.line); err != nil {
			return err
		}
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%s: %v", cmd.line, err)
			}
			if strings.HasPrefix(l, cmd.tag+" ") {
				if !strings.HasPrefix(l, cmd.tag+" OK") {
					return fmt.Errorf("%s: %q", cmd.line, l)
				}
				break
			}
		}
	}
	return nil
}

// loginLoop runs n login cycles on loginClients connections at a time and
// returns the rate.
func loginLoop(b *testing.B, n int, addr, user, pass, mailbox string) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loginClients)
	start := time.Now()
	for range loginClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := loginCycle(addr, user, pass, mailbox); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return float64(n) / elapsed.Seconds()
}

// BenchmarkLoginLoop: one op is a round of ten logins; ten clients in a LOGIN/SELECT/LOGOUT loop against
// the bridge and, in the same run, against Dovecot with a bcrypt password
// scheme of the same cost as `popbridge passwd` (12). The bridge selects
// INBOX (its upstream, the same Dovecot, mirrored) or Local/Inbox (the
// archive); "nocache" is the bridge without its login cache (a bcrypt per
// LOGIN, as before issue 10). Each reports logins/s and the bridge's its
// ratio to Dovecot's rate, x-dovecot (target ≥ 0.8).
//
//	go test ./cmd/popbridge -run '^$' -bench LoginLoop
func BenchmarkLoginLoop(b *testing.B) {
	testenv.RequireDovecot(b)
	const cost = 12
	if h, err := server.HashPassword("x"); err != nil {
		b.Fatal(err)
	} else if c, _ := bcrypt.Cost([]byte(h)); c != cost {
		b.Fatalf("popbridge passwd uses cost %d, not %d", c, cost)
	}
	dc := testenv.StartDovecot(b, testenv.DovecotOptions{
		BcryptCost: cost,
		Users:      []testenv.DovecotUser{{Name: "direct", Password: "direct-pw"}, {Name: "upstream", Password: "upstream-pw"}},
	})
	for i := range 50 {
		msg := []byte(fmt.Sprintf("From: s%d@example.com\r\nSubject: message %d\r\nMessage-ID: <m%d@bench>\r\n\r\nbody %d\r\n", i, i, i, i))
		dc.Append(b, "direct", "INBOX", msg, nil, time.Time{})
		dc.Append(b, "upstream", "INBOX", msg, nil, time.Time{})
	}

	// A bridge config with the archive and the upstream, in its own
	// data directory.
	bridgeConfig := func() (cfgPath string, port int) {
		dir := b.TempDir()
		archive := dir + "/archive"
		if err := os.MkdirAll(archive, 0o755); err != nil {
			b.Fatal(err)
		}
		var mbox strings.Builder
		for i := range 50 {
			fmt.Fprintf(&mbox, "From s%d@example.com Mon Jan  1 10:00:00 2024\nFrom: s%d@example.com\nSubject: old %d\n\nbody %d\n\n", i, i, i, i)
		}
		if err := os.WriteFile(archive+"/Inbox", []byte(mbox.String()), 0o444); err != nil {
			b.Fatal(err)
		}
		port = freePort(b)
		cfgPath = writeConfig(b, dir, port, map[string]string{"Old": archive}, "")
		hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), cost)
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := os.ReadFile(cfgPath)
		if err != nil {
			b.Fatal(err)
		}
		cfg = regexp.MustCompile(`password_hash = ".*"`).ReplaceAllLiteral(cfg, []byte(fmt.Sprintf("password_hash = %q", hash)))
		cfg = append(cfg, fmt.Sprintf("[upstream]\nhost = \"127.0.0.1\"\nport = %d\ntls = \"none\"\nusername = \"upstream\"\npassword = \"upstream-pw\"\n", dc.IMAPPort)...)
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			b.Fatal(err)
		}
		return cfgPath, port
	}

	dovecotAddr := fmt.Sprintf("%s:%d", dc.Host, dc.IMAPPort)
	rates := map[string]float64{}
	run := func(name, addr, user, pass, mailbox string) {
		warm := false
		b.Run(name, func(b *testing.B) {
			if !warm {
				// Outside the timer: the bridge's first login of each
				// client fills its cache; the upstream mirror is read once.
				loginLoop(b, loginClients, addr, user, pass, mailbox)
				warm = true
			}
			b.ResetTimer()
			r := loginLoop(b, b.N*loginClients, addr, user, pass, mailbox)
			b.StopTimer()
			b.ReportMetric(r, "logins/s")
			b.ReportMetric(0, "ns/op")
			if d := rates["dovecot"]; d > 0 && name != "dovecot" {
				b.ReportMetric(r/d, "x-dovecot")
			}
			rates[name] = r
		})
	}

	run("dovecot", dovecotAddr, "direct", "direct-pw", "INBOX")

	cfgPath, port := bridgeConfig()
	stop := startBenchBridge(b, cfgPath, port)
	bridgeAddr := fmt.Sprintf("127.0.0.1:%d", port)
	run("bridge-INBOX", bridgeAddr, "me", testPassword, "INBOX")
	run("bridge-Local", bridgeAddr, "me", testPassword, "Local/Inbox")
	stop()

	authCacheTTL = -1
	defer func() { authCacheTTL = 0 }()
	cfgPath, port = bridgeConfig()
	stop = startBenchBridge(b, cfgPath, port)
	run("bridge-nocache-INBOX", fmt.Sprintf("127.0.0.1:%d", port), "me", testPassword, "INBOX")
	stop()
}

// startBenchBridge runs serve and waits until a client can log in and
// select Local/Inbox. (startBridge's readiness check may open the data
// directory itself, which with a slow upstream login holds it too long.)
func startBenchBridge(b *testing.B, cfgPath string, port int) (stop func()) {
	cfg, _, err := LoadConfig(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &syncBuffer{}
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(out, nil)), out) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("serve: %v", err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := loginCycle(addr, "me", testPassword, "Local/Inbox")
		if err == nil {
			return stop
		}
		select {
		case err := <-done:
			b.Fatalf("serve ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			b.Fatalf("bridge not ready: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness
	}
}
