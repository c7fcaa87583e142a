package uninstall

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/autostart"
	"github.com/popbridge/popbridge/control"
)

// setup makes a home with an XDG autostart entry (Linux without a systemd
// user manager, in a desktop session), a data dir with the bridge's own
// Maildir and a symlink to an archive, and an archive outside it.
func setup(t *testing.T) (Options, autostart.Env, string) {
	t.Helper()
	home := t.TempDir()
	env := autostart.Env{
		GOOS: "linux", Home: home, ConfigDir: filepath.Join(home, ".config"),
		Getenv: func(k string) string {
			if k == "XDG_CURRENT_DESKTOP" {
				return "GNOME"
			}
			return ""
		},
		Run: func(context.Context, string, ...string) ([]byte, error) {
			return []byte("Failed to connect to bus"), errors.New("exit status 1")
		},
		LookPath: func(string) (string, error) { return "/usr/bin/systemctl", nil },
	}
	archive := filepath.Join(home, "Mail", "Inbox.mbox")
	write(t, archive, "From a@b Thu Jan  1 00:00:00 2015\n\nold mail\n")
	data := filepath.Join(home, ".local", "share", "popbridge")
	write(t, filepath.Join(data, "popbridge.db"), strings.Repeat("x", 4096))
	write(t, filepath.Join(data, "maildir", "Inbox", "cur", "1.eml:2,S"), "Subject: mine\n\nmoved here\n")
	write(t, filepath.Join(data, "maildir", "Inbox", "new", "2.eml"), "Subject: mine too\n\n")
	write(t, filepath.Join(data, "oauth", "microsoft-me@example.com.json"), "{}")
	if runtime.GOOS != "windows" {
		if err := os.Symlink(archive, filepath.Join(data, "link-to-archive")); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(home, ".config", "popbridge", "popbridge.toml")
	write(t, cfg, "")
	if _, err := autostart.Enable(context.Background(), env, autostart.Entry{Exe: "/opt/popbridge/popbridge", Args: autostart.Args(cfg)}, autostart.Options{}); err != nil {
		t.Fatal(err)
	}
	return Options{DataDir: data, Sources: []string{archive}, Config: cfg, Exe: "/opt/popbridge/popbridge", Autostart: &env}, env, archive
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func autostartOn(t *testing.T, env autostart.Env) bool {
	st, err := autostart.Check(context.Background(), env, "")
	if err != nil {
		t.Fatal(err)
	}
	return st.Enabled
}

func TestRunWithData(t *testing.T) {
	opts, env, archive := setup(t)
	opts.RemoveData = true
	plan, err := Check(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Refused != "" || !plan.DataExists || plan.OwnMessages != 2 || !plan.Autostart.Enabled {
		t.Fatalf("plan = %+v", plan)
	}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(opts.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir still there: %v", err)
	}
	if b, err := os.ReadFile(archive); err != nil || !strings.Contains(string(b), "old mail") {
		t.Errorf("the archive was harmed: %v", err)
	}
	if autostartOn(t, env) {
		t.Error("autostart still on")
	}
	if len(rep.Removed) != 2 || !strings.Contains(rep.Removed[0], "autostart") || !strings.Contains(rep.Removed[1], opts.DataDir) {
		t.Errorf("removed = %q", rep.Removed)
	}
	kept := strings.Join(rep.Kept, "\n")
	for _, want := range []string{archive, opts.Config, opts.Exe} {
		if !strings.Contains(kept, want) {
			t.Errorf("kept does not list %s: %q", want, rep.Kept)
		}
	}
	if strings.Contains(kept, "data dir") {
		t.Errorf("kept lists the deleted data dir: %q", rep.Kept)
	}
}

// TestDataInHome: the usual data dir, inside the home directory, may go;
// so may the data dir of the popbridge asking (Self), which stops first.
func TestDataInHome(t *testing.T) {
	opts, _, _ := setup(t)
	home := filepath.Dir(filepath.Dir(filepath.Dir(opts.DataDir))) // …/.local/share/popbridge
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)
	opts.RemoveData = true
	plan, err := Check(context.Background(), opts)
	if err != nil || plan.Refused != "" || plan.RefusedCode != "" {
		t.Fatalf("data dir inside the home: %+v %v", plan, err)
	}
	c, err := control.ClaimDataDir(opts.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if plan, _ := Check(context.Background(), opts); plan.RefusedCode != RefusedRunning {
		t.Errorf("claimed data dir: %+v", plan)
	}
	opts.Self = true
	if plan, _ := Check(context.Background(), opts); plan.Refused != "" || plan.OwnMessages != 2 {
		t.Errorf("the running popbridge's own plan: %+v", plan)
	}
}

func TestRunWithoutData(t *testing.T) {
	opts, env, _ := setup(t)
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.DataDir, "popbridge.db")); err != nil {
		t.Errorf("data deleted without -data: %v", err)
	}
	if autostartOn(t, env) {
		t.Error("autostart still on")
	}
	if !strings.Contains(strings.Join(rep.Kept, "\n"), "data dir "+opts.DataDir) {
		t.Errorf("kept = %q", rep.Kept)
	}
	// Twice: nothing left to do, no error.
	rep, err = Run(context.Background(), opts)
	if err != nil || len(rep.Removed) != 0 {
		t.Errorf("second run: %+v, %v", rep, err)
	}
}

// TestRefusals: the data dir is never deleted when it is, holds or lies
// inside an archive source, or while a bridge runs on it; and nothing at
// all changes then (autostart stays on).
func TestRefusals(t *testing.T) {
	cases := []struct {
		name   string
		modify func(t *testing.T, o *Options)
		want   string
	}{
		{"contains a source", func(t *testing.T, o *Options) {
			src := filepath.Join(o.DataDir, "imported", "old.mbox")
			write(t, src, "From a@b Thu Jan  1 00:00:00 2015\n\nx\n")
			o.Sources = append(o.Sources, src)
		}, "contains the archive source"},
		{"is a source", func(t *testing.T, o *Options) { o.Sources = append(o.Sources, o.DataDir) }, "is the archive source"},
		{"inside a source", func(t *testing.T, o *Options) { o.Sources = append(o.Sources, filepath.Dir(o.DataDir)) }, "inside the archive source"},
		{"source through a symlink", func(t *testing.T, o *Options) {
			if runtime.GOOS == "windows" {
				t.Skip("symlinks")
			}
			link := filepath.Join(t.TempDir(), "data-link")
			if err := os.Symlink(o.DataDir, link); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(o.DataDir, "keep.mbox")
			write(t, src, "From a@b Thu Jan  1 00:00:00 2015\n\nx\n")
			o.Sources = append(o.Sources, filepath.Join(link, "keep.mbox"))
		}, "contains the archive source"},
		{"bridge holding the data dir", func(t *testing.T, o *Options) {
			c, err := control.ClaimDataDir(o.DataDir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Release)
		}, "popbridge is running on it"},
		{"bridge answering on its control endpoint", func(t *testing.T, o *Options) {
			srv, err := control.Listen(control.NewService(control.Options{DataDir: o.DataDir}), o.DataDir, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
		}, "popbridge is running on it"},
		{"home directory", func(t *testing.T, o *Options) {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Skip(err)
			}
			o.DataDir = home
		}, "home directory"},
		{"holds the home directory", func(t *testing.T, o *Options) {
			t.Setenv("HOME", filepath.Join(o.DataDir, "me"))
			t.Setenv("USERPROFILE", filepath.Join(o.DataDir, "me"))
		}, "home directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts, env, _ := setup(t)
			opts.RemoveData = true
			tc.modify(t, &opts)
			before := countFiles(t, opts.DataDir)
			_, err := Run(context.Background(), opts)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want a refusal saying %q", err, tc.want)
			}
			if after := countFiles(t, opts.DataDir); after != before {
				t.Errorf("files in the data dir: %d before, %d after", before, after)
			}
			if !autostartOn(t, env) {
				t.Error("autostart was removed although the run was refused")
			}
		})
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			n++
		}
		if n > 10000 {
			return filepath.SkipAll
		}
		return nil
	})
	return n
}
