package testenv

import (
	"errors"
	"strings"
	"testing"
)

func TestParseControlRecords(t *testing.T) {
	in := "Package: courier-imap\nVersion: 5.0.13+1.0.16-3+b6\nDepends: courier-base (= 1.0.16-3+b6), gamin\n" +
		"Description: Courier mail server - IMAP server\n folded line\n .\n\n" +
		"Package: courier-imap\nVersion: 5.0.13+1.0.16-3\nDepends: courier-base (= 1.0.16-3),\n libc6\n"
	recs := parseControlRecords([]byte(in))
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2: %v", len(recs), recs)
	}
	if recs[0]["Version"] != "5.0.13+1.0.16-3+b6" || recs[1]["Version"] != "5.0.13+1.0.16-3" {
		t.Errorf("versions %q %q", recs[0]["Version"], recs[1]["Version"])
	}
	if recs[1]["Depends"] != "courier-base (= 1.0.16-3),\nlibc6" {
		t.Errorf("folded Depends %q", recs[1]["Depends"])
	}
	if recs[0]["Description"] != "Courier mail server - IMAP server\nfolded line\n." {
		t.Errorf("Description %q", recs[0]["Description"])
	}
}

func FuzzParseControlRecords(f *testing.F) {
	f.Add([]byte("Package: a\nVersion: 1\n\nPackage: b\n c\n"))
	f.Add([]byte(" leading continuation\n\n\n:\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, rec := range parseControlRecords(b) {
			if len(rec) == 0 {
				t.Fatal("empty record returned")
			}
		}
	})
}

// A private server whose packages are missing names them: skipped
// normally, failed under CI=true.
func TestMissingServerPackages(t *testing.T) {
	for _, tc := range []struct{ what, pkgs, want string }{
		{"couriertcpd", courierPackages, "apt-get install -y courier-base courier-authdaemon courier-authlib-userdb"},
		{"cyrus master", cyrusPackages, "apt-get install -y cyrus-common sasl2-bin"},
	} {
		t.Setenv("CI", "true")
		f := &fakeTB{}
		missing(f, tc.what, tc.pkgs)
		if !strings.Contains(f.fatal, tc.want) || f.skip != "" {
			t.Errorf("CI=true: fatal %q skip %q, want a failure naming %q", f.fatal, f.skip, tc.want)
		}
		t.Setenv("CI", "")
		f = &fakeTB{}
		missing(f, tc.what, tc.pkgs)
		if !strings.Contains(f.skip, tc.want) || f.fatal != "" {
			t.Errorf("CI unset: fatal %q skip %q, want a skip naming %q", f.fatal, f.skip, tc.want)
		}
	}
	// The unpacked package cannot be made without its companion.
	_, err := debTree(debPkg{name: "courier-imap", companion: "popbridge-no-such-package"})
	if !errors.Is(err, errDebUnavailable) || !strings.Contains(err.Error(), "apt-get install -y popbridge-no-such-package") {
		t.Errorf("debTree without the companion: %v", err)
	}
	t.Setenv("CI", "true")
	f := &fakeTB{}
	unavailable(f, "courier-imap (unpacked privately, never installed): "+err.Error())
	if !strings.Contains(f.fatal, "courier-imap") || f.skip != "" {
		t.Errorf("unavailable under CI=true: fatal %q skip %q", f.fatal, f.skip)
	}
}
