package autostart

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func xdgConfigHome(env Env) string {
	if x := env.getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return x
	}
	return filepath.Join(env.Home, ".config")
}

func unitDir(env Env) string  { return filepath.Join(xdgConfigHome(env), "systemd", "user") }
func unitPath(env Env) string { return filepath.Join(unitDir(env), Name+".service") }
func wantsPath(env Env) string {
	return filepath.Join(unitDir(env), "default.target.wants", Name+".service")
}
func desktopPath(env Env) string {
	return filepath.Join(xdgConfigHome(env), "autostart", Name+".desktop")
}

// SystemdUnit is the systemd user unit for e.
func SystemdUnit(e Entry) string {
	var b strings.Builder
	b.WriteString("# Made by `popbridge autostart on`; `popbridge autostart off` removes it.\n")
	b.WriteString("[Unit]\n")
	b.WriteString("Description=popbridge: your old POP mail, on every device, over IMAP\n")
	b.WriteString("Documentation=https://github.com/popbridge/popbridge\n\n")
	b.WriteString("[Service]\n")
	b.WriteString("Type=simple\n")
	b.WriteString("ExecStart=" + systemdExec(e.Command()) + "\n")
	// A crash restarts it; a clean exit (stopped, or another popbridge
	// already running) does not.
	b.WriteString("Restart=on-failure\n")
	b.WriteString("RestartSec=10\n\n")
	b.WriteString("[Install]\n")
	b.WriteString("WantedBy=default.target\n")
	return b.String()
}

// DesktopEntry is the XDG autostart entry for e.
func DesktopEntry(e Entry) string {
	var b strings.Builder
	b.WriteString("# Made by `popbridge autostart on`; `popbridge autostart off` removes it.\n")
	b.WriteString("[Desktop Entry]\n")
	b.WriteString("Type=Application\n")
	b.WriteString("Name=popbridge\n")
	b.WriteString("Comment=Your old POP mail, on every device, over IMAP\n")
	b.WriteString("Exec=" + desktopExec(e.Command()) + "\n")
	b.WriteString("Terminal=false\n")
	b.WriteString("NoDisplay=true\n")
	b.WriteString("X-GNOME-Autostart-enabled=true\n")
	return b.String()
}

// userSystemd reports whether a systemd user manager answers, and if not,
// why (for the message).
func userSystemd(ctx context.Context, env Env) (bool, string) {
	if env.LookPath != nil {
		if _, err := env.LookPath("systemctl"); err != nil {
			return false, "systemctl is not installed"
		}
	}
	out, err := env.Run(ctx, "systemctl", "--user", "show-environment")
	if err != nil {
		return false, "systemctl --user: " + firstLineOf(out, err)
	}
	return true, ""
}

func desktopSession(env Env) bool {
	return env.getenv("XDG_CURRENT_DESKTOP") != "" || env.getenv("DESKTOP_SESSION") != ""
}

// noUserSystemdError says what to do on a system without a user manager.
func noUserSystemdError(why string, e Entry) error {
	return fmt.Errorf("%w (%s): popbridge cannot make itself start with your session here. "+
		"Start it from your desktop's \"Startup Applications\", or run `popbridge autostart on -xdg` in a desktop session, "+
		"or add this line with `crontab -e`: @reboot %s", ErrNoUserSystemd, why, systemdExec(e.Command()))
}

func enableLinux(ctx context.Context, env Env, e Entry, opts Options, old *Record, res *Result) (*Record, error) {
	method := opts.Method
	switch method {
	case "", MethodSystemdUser, MethodXDGAutostart:
	default:
		return nil, fmt.Errorf("autostart: unknown method %q (use %s or %s)", method, MethodSystemdUser, MethodXDGAutostart)
	}
	if method != MethodXDGAutostart {
		ok, why := userSystemd(ctx, env)
		switch {
		case ok:
			method = MethodSystemdUser
		case method == MethodSystemdUser || !desktopSession(env):
			return nil, noUserSystemdError(why, e)
		default:
			method = MethodXDGAutostart
			res.note(NoteXDGFallback, "there is no systemd user manager here (%s), so popbridge uses your desktop's autostart instead: it starts when you log in to the desktop", why)
		}
	}
	if method == MethodXDGAutostart {
		path := desktopPath(env)
		data := []byte(DesktopEntry(e))
		if err := writeFileAtomic(path, data, 0o644); err != nil {
			return nil, fmt.Errorf("autostart: write %s: %w", path, err)
		}
		res.Changed = append(res.Changed, "wrote "+path)
		res.note(NoteNextLogin, "popbridge will start when you next log in to your desktop")
		return &Record{Method: MethodXDGAutostart, Files: []string{path}, SHA256: map[string]string{path: sum(data)}}, nil
	}

	path := unitPath(env)
	data := []byte(SystemdUnit(e))
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("autostart: write %s: %w", path, err)
	}
	res.Changed = append(res.Changed, "wrote "+path)
	rec := &Record{Method: MethodSystemdUser, Unit: Name + ".service", Files: []string{path, wantsPath(env)}, SHA256: map[string]string{path: sum(data)}}
	for _, args := range [][]string{
		{"--user", "daemon-reload"},
		// --now starts it if it is not running; a popbridge already
		// running (in a terminal, or this console's) makes it exit quietly.
		{"--user", "enable", "--now", rec.Unit},
	} {
		out, err := env.Run(ctx, "systemctl", args...)
		if err != nil {
			return rec, fmt.Errorf("autostart: systemctl %s: %s", strings.Join(args, " "), firstLineOf(out, err))
		}
		res.Changed = append(res.Changed, "ran systemctl "+strings.Join(args, " "))
	}
	return rec, nil
}

func disableSystemd(ctx context.Context, env Env, rec *Record, keep map[string]bool, res *Result) error {
	unit := rec.Unit
	if unit == "" {
		unit = Name + ".service"
	}
	if keep[unitPath(env)] {
		return nil
	}
	manager, _ := userSystemd(ctx, env)
	var errs []error
	// disable removes the .wants symlink that enable made; the running
	// service is left alone (see the package notes).
	if manager {
		args := []string{"--user", "disable", unit}
		if out, err := env.Run(ctx, "systemctl", args...); err != nil {
			errs = append(errs, fmt.Errorf("autostart: systemctl %s: %s", strings.Join(args, " "), firstLineOf(out, err)))
		} else {
			res.Changed = append(res.Changed, "ran systemctl "+strings.Join(args, " "))
		}
		if out, err := env.Run(ctx, "systemctl", "--user", "is-active", unit); err == nil && strings.TrimSpace(string(out)) == "active" {
			res.note(NoteStillRunning, "popbridge keeps running until you quit it or log out (systemctl --user stop %s stops it now); it will not start at the next login", unit)
		}
	}
	// The files go before the reload, so that systemd forgets the unit.
	for _, f := range rec.Files {
		if keep[f] {
			continue
		}
		if err := os.Remove(f); err == nil {
			res.Changed = append(res.Changed, "removed "+f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("autostart: remove %s: %w", f, err))
		}
	}
	if manager && len(errs) == 0 {
		if _, err := env.Run(ctx, "systemctl", "--user", "daemon-reload"); err == nil {
			res.Changed = append(res.Changed, "ran systemctl --user daemon-reload")
		}
	}
	return errors.Join(errs...)
}

func checkSystemd(ctx context.Context, env Env, rec *Record, st *Status) {
	path := unitPath(env)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	st.Enabled = true
	st.Where = path
	st.Command = execStart(string(data))
	if rec.SHA256[path] != "" && sum(data) != rec.SHA256[path] {
		st.addProblem(ProblemEdited, map[string]string{"path": path}, "%s was changed after autostart made it", path)
	}
	unit := rec.Unit
	if unit == "" {
		unit = Name + ".service"
	}
	if ok, why := userSystemd(ctx, env); !ok {
		st.State = "no systemd user manager (" + why + ")"
		return
	}
	enabled, _ := env.Run(ctx, "systemctl", "--user", "is-enabled", unit)
	active, _ := env.Run(ctx, "systemctl", "--user", "is-active", unit)
	e, a := strings.TrimSpace(string(enabled)), strings.TrimSpace(string(active))
	st.State = e + ", " + a
	if e != "enabled" {
		st.addProblem(ProblemNotEnabled, map[string]string{"unit": unit, "state": e}, "the unit %s is %s, so it will not start at login; run autostart on again", unit, e)
	}
}

func execStart(unit string) []string {
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "ExecStart="); ok {
			cmd, err := splitSystemdExec(v)
			if err == nil {
				return cmd
			}
		}
	}
	return nil
}

func checkXDG(env Env, rec *Record, st *Status) {
	path := desktopPath(env)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	st.Enabled = true
	st.Where = path
	st.State = "desktop autostart"
	if rec.SHA256[path] != "" && sum(data) != rec.SHA256[path] {
		st.addProblem(ProblemEdited, map[string]string{"path": path}, "%s was changed after autostart made it", path)
	}
	if rec.Entry.Exe != "" {
		st.Command = rec.Entry.Command()
	}
}
