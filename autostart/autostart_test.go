package autostart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"howett.net/plist"
)

// fakeSystem stands in for the OS's service manager (launchctl,
// systemctl) and registry, recording every command; the files are real,
// under a temporary home.
type fakeSystem struct {
	mu    sync.Mutex
	calls []string
	// answer returns output and failure for a command line.
	answer func(line string) (string, error)
	reg    map[string]any // key + "\x00" + name → string or []byte
	// onEnable simulates `systemctl enable` making the .wants link.
	env *Env
}

func (f *fakeSystem) run(_ context.Context, name string, args ...string) ([]byte, error) {
	line := strings.Join(append([]string{name}, args...), " ")
	f.mu.Lock()
	f.calls = append(f.calls, line)
	f.mu.Unlock()
	if f.env != nil && name == "systemctl" && len(args) >= 3 && args[1] == "enable" {
		os.MkdirAll(filepath.Dir(wantsPath(*f.env)), 0o755)
		os.Symlink(unitPath(*f.env), wantsPath(*f.env))
	}
	if f.env != nil && name == "systemctl" && len(args) >= 3 && args[1] == "disable" {
		os.Remove(wantsPath(*f.env))
	}
	if f.answer == nil {
		return nil, nil
	}
	out, err := f.answer(line)
	return []byte(out), err
}

func (f *fakeSystem) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeSystem) GetString(key, name string) (string, bool, error) {
	v, ok := f.reg[key+"\x00"+name].(string)
	return v, ok, nil
}
func (f *fakeSystem) SetString(key, name, value string) error {
	f.reg[key+"\x00"+name] = value
	return nil
}
func (f *fakeSystem) GetBinary(key, name string) ([]byte, bool, error) {
	v, ok := f.reg[key+"\x00"+name].([]byte)
	return v, ok, nil
}
func (f *fakeSystem) DeleteValue(key, name string) error {
	delete(f.reg, key+"\x00"+name)
	return nil
}

var errExit1 = errors.New("exit status 1")

func newEnv(t *testing.T, goos string, sys *fakeSystem, vars map[string]string) Env {
	t.Helper()
	home := t.TempDir()
	env := Env{
		GOOS:      goos,
		Home:      home,
		ConfigDir: filepath.Join(home, "config"),
		UID:       501,
		Getenv:    func(k string) string { return vars[k] },
		Run:       sys.run,
		LookPath:  func(string) (string, error) { return "/usr/bin/systemctl", nil },
	}
	if goos == "windows" {
		sys.reg = map[string]any{}
		env.Registry = sys
	}
	sys.env = &env
	return env
}

// A config path with everything that needs quoting somewhere.
const trickyConfig = `/home/ユーザー/My Mail/50% "pop" $HOME\x.toml`

func TestRunValue(t *testing.T) {
	tests := []struct {
		cmd  []string
		want string
	}{
		{[]string{`C:\Program Files\popbridge\popbridgew.exe`, "start", "-autostart", "-config", `C:\Users\太郎\AppData\Roaming\popbridge\popbridge.toml`},
			`"C:\Program Files\popbridge\popbridgew.exe" start -autostart -config C:\Users\太郎\AppData\Roaming\popbridge\popbridge.toml`},
		{[]string{`C:\pb\popbridgew.exe`, "-config", `C:\My Mail\popbridge.toml`},
			`"C:\pb\popbridgew.exe" -config "C:\My Mail\popbridge.toml"`},
		{[]string{`C:\pb\popbridgew.exe`, `C:\dir with space\`, `say "hi"`, ""},
			`"C:\pb\popbridgew.exe" "C:\dir with space\\" "say \"hi\"" ""`},
	}
	for _, tt := range tests {
		got := windowsCommandLine(tt.cmd)
		if got != tt.want {
			t.Errorf("windowsCommandLine(%q)\n got %s\nwant %s", tt.cmd, got, tt.want)
		}
		if back := splitWindowsCommandLine(got); !reflect.DeepEqual(back, tt.cmd) {
			t.Errorf("split(%s) = %q, want %q", got, back, tt.cmd)
		}
	}
}

func TestWindowsGUIExe(t *testing.T) {
	has := func(p string) bool { return p == `C:\pb\popbridgew.exe` }
	if got := windowsGUIExe(`C:\pb\popbridge.exe`, has); got != `C:\pb\popbridgew.exe` {
		t.Errorf("with popbridgew.exe beside: %s", got)
	}
	if got := windowsGUIExe(`C:\other\popbridge.exe`, has); got != `C:\other\popbridge.exe` {
		t.Errorf("without popbridgew.exe: %s", got)
	}
}

func TestLaunchAgentPlist(t *testing.T) {
	e := Entry{Exe: "/Users/taro/bin/popbridge", Args: Args(trickyConfig), Config: trickyConfig, LogDir: "/Users/taro/Library/Application Support/popbridge/logs"}
	data, err := LaunchAgentPlist(e)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if _, err := plist.Unmarshal(data, &got); err != nil {
		t.Fatalf("plist does not parse: %v\n%s", err, data)
	}
	want := map[string]any{
		"Label":                  Label,
		"ProgramArguments":       []any{e.Exe, "start", "-autostart", "-config", trickyConfig},
		"RunAtLoad":              true,
		"KeepAlive":              map[string]any{"SuccessfulExit": false},
		"LimitLoadToSessionType": "Aqua",
		"ProcessType":            "Interactive",
		"StandardOutPath":        e.LogDir + "/launchd.log",
		"StandardErrorPath":      e.LogDir + "/launchd.log",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plist =\n%#v\nwant\n%#v", got, want)
	}
	if !strings.HasPrefix(string(data), `<?xml version="1.0" encoding="UTF-8"?>`) || !strings.Contains(string(data), "<!DOCTYPE plist") {
		t.Errorf("not an XML property list:\n%s", data)
	}
	// A second, independent parser: Python's plistlib (what macOS tools
	// also accept).
	if py, err := exec.LookPath("python3"); err == nil {
		f := filepath.Join(t.TempDir(), "a.plist")
		os.WriteFile(f, data, 0o644)
		out, err := exec.Command(py, "-c", "import plistlib,sys,json; print(json.dumps(plistlib.load(open(sys.argv[1],'rb'))['ProgramArguments'], ensure_ascii=False))", f).CombinedOutput()
		if err != nil {
			t.Fatalf("plistlib: %v\n%s", err, out)
		}
		if w := fmt.Sprintf(`["%s", "start", "-autostart", "-config", "/home/ユーザー/My Mail/50%% \"pop\" $HOME\\x.toml"]`, e.Exe); strings.TrimSpace(string(out)) != w {
			t.Errorf("plistlib reads ProgramArguments %s, want %s", out, w)
		}
	}
}

func TestSystemdUnit(t *testing.T) {
	e := Entry{Exe: "/home/taro/bin/popbridge", Args: Args(trickyConfig), Config: trickyConfig}
	unit := SystemdUnit(e)
	wantExec := `ExecStart=/home/taro/bin/popbridge start -autostart -config "/home/ユーザー/My Mail/50%% \"pop\" $$HOME\\x.toml"` + "\n"
	if !strings.Contains(unit, wantExec) {
		t.Errorf("unit lacks %q:\n%s", wantExec, unit)
	}
	for _, line := range []string{"[Service]\n", "Type=simple\n", "Restart=on-failure\n", "[Install]\n", "WantedBy=default.target\n"} {
		if !strings.Contains(unit, line) {
			t.Errorf("unit lacks %q", line)
		}
	}
	if got := execStart(unit); !reflect.DeepEqual(got, e.Command()) {
		t.Errorf("ExecStart reads back as %q, want %q", got, e.Command())
	}
}

// TestSystemdAnalyzeVerify has systemd itself check the unit (the binary
// must exist, so it is this test binary).
func TestSystemdAnalyzeVerify(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd is Linux")
	}
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found: apt-get install -y systemd")
		}
		t.Skip("systemd-analyze not found: apt-get install -y systemd")
	}
	exe, _ := os.Executable()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "My Mail", "50% popbridge.toml")
	f := filepath.Join(dir, Name+".service")
	if err := os.WriteFile(f, []byte(SystemdUnit(Entry{Exe: exe, Args: Args(cfg)})), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "verify", f)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// And it does complain about a broken unit.
	bad := strings.Replace(SystemdUnit(Entry{Exe: exe, Args: Args(cfg)}), "Restart=on-failure", "Restart=sometimes", 1)
	os.WriteFile(f, []byte(bad), 0o644)
	if out, _ := exec.Command(bin, "verify", f).CombinedOutput(); !strings.Contains(string(out), "sometimes") {
		t.Errorf("systemd-analyze verify accepted Restart=sometimes: %s", out)
	}
}

func TestDesktopEntry(t *testing.T) {
	e := Entry{Exe: "/home/taro/bin/popbridge", Args: Args(trickyConfig)}
	got := DesktopEntry(e)
	want := `Exec=/home/taro/bin/popbridge start -autostart -config "/home/ユーザー/My Mail/50%% \\"pop\\" \\$HOME\\\\x.toml"` + "\n"
	if !strings.Contains(got, want) {
		t.Errorf("desktop entry lacks\n%s\n%s", want, got)
	}
	if v, err := exec.LookPath("desktop-file-validate"); err == nil {
		f := filepath.Join(t.TempDir(), Name+".desktop")
		os.WriteFile(f, []byte(got), 0o644)
		if out, err := exec.Command(v, f).CombinedOutput(); err != nil {
			t.Errorf("desktop-file-validate: %v\n%s", err, out)
		}
	}
}

func TestWindowsEnableDisable(t *testing.T) {
	sys := &fakeSystem{}
	env := newEnv(t, "windows", sys, nil)
	e := Entry{Exe: `C:\Users\太郎\popbridge\popbridgew.exe`, Args: Args(`C:\Users\太郎\My Mail\popbridge.toml`)}
	// The user had turned an earlier entry off in Task Manager.
	sys.reg[ApprovedKey+"\x00"+Name] = []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	res, err := Enable(context.Background(), env, e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `"C:\Users\太郎\popbridge\popbridgew.exe" start -autostart -config "C:\Users\太郎\My Mail\popbridge.toml"`
	if v, _, _ := sys.GetString(RunKey, Name); v != want {
		t.Errorf("Run value = %s, want %s", v, want)
	}
	if _, ok := sys.reg[ApprovedKey+"\x00"+Name]; ok {
		t.Error("the Task Manager 'disabled' mark is still there")
	}
	if res.Method != MethodRegistryRun || !hasNote(res, NoteStartupEnabled) || hasNote(res, NoteConsoleWindow) {
		t.Errorf("result = %+v", res)
	}
	if calls := sys.takeCalls(); len(calls) != 0 {
		t.Errorf("ran commands on Windows: %q", calls)
	}

	st, err := Check(context.Background(), env, "")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.Where != `HKCU\`+RunKey+`\popbridge` || !reflect.DeepEqual(st.Command, e.Command()) || st.State != "approved" {
		t.Errorf("status = %+v", st)
	}
	// Task Manager turns it off again: status says so.
	sys.reg[ApprovedKey+"\x00"+Name] = []byte{3}
	st, _ = Check(context.Background(), env, "")
	if !hasProblem(st, ProblemDisabledByOS) {
		t.Errorf("status after Task Manager off = %+v", st)
	}

	res, err = Disable(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(sys.reg) != 0 {
		t.Errorf("registry after off: %v", sys.reg)
	}
	if _, err := os.Stat(RecordPath(env)); !os.IsNotExist(err) {
		t.Errorf("record still there: %v", err)
	}
	if len(res.Changed) != 2 {
		t.Errorf("off changed %q, want the Run and StartupApproved values", res.Changed)
	}
	st, _ = Check(context.Background(), env, "")
	if st.Enabled {
		t.Errorf("still enabled after off: %+v", st)
	}
	// A console build (no popbridgew.exe) is noted.
	res, _ = Enable(context.Background(), env, Entry{Exe: `C:\pb\popbridge.exe`, Args: Args(`C:\c.toml`)}, Options{})
	if !hasNote(res, NoteConsoleWindow) {
		t.Errorf("no console-window note for popbridge.exe: %+v", res)
	}
}

func TestDarwinEnableDisable(t *testing.T) {
	loaded, pid := false, 0
	sys := &fakeSystem{}
	sys.answer = func(line string) (string, error) {
		switch {
		case strings.HasPrefix(line, "launchctl print"):
			if !loaded {
				return "Could not find service \"" + Label + "\" in domain for port", errExit1
			}
			if pid != 0 {
				return fmt.Sprintf("gui/501/%s = {\n\tstate = running\n\tpid = %d\n}", Label, pid), nil
			}
			return "gui/501/" + Label + " = {\n\tstate = not running\n}", nil
		case strings.HasPrefix(line, "launchctl bootstrap"):
			loaded, pid = true, 4242
		case strings.HasPrefix(line, "launchctl bootout"):
			loaded, pid = false, 0
		}
		return "", nil
	}
	env := newEnv(t, "darwin", sys, nil)
	logDir := filepath.Join(env.Home, "Library", "Application Support", "popbridge", "logs")
	e := Entry{Exe: "/Applications/popbridge/popbridge", Args: Args("/Users/taro/popbridge.toml"), LogDir: logDir}
	res, err := Enable(context.Background(), env, e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(env.Home, "Library", "LaunchAgents", Label+".plist")
	wantCalls := []string{"launchctl print gui/501/" + Label, "launchctl bootstrap gui/501 " + path}
	if calls := sys.takeCalls(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("commands = %q, want %q", calls, wantCalls)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := LaunchAgentPlist(e)
	if string(data) != string(want) {
		t.Errorf("plist on disk differs from LaunchAgentPlist")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("plist mode %04o, want 0644", st.Mode().Perm())
	}
	if !slices.Contains(res.Changed, "wrote "+path) {
		t.Errorf("changed = %q", res.Changed)
	}

	st, err := Check(context.Background(), env, "")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enabled || st.State != "running (pid 4242)" || !reflect.DeepEqual(st.Command, e.Command()) {
		t.Errorf("status = %+v", st)
	}

	// Turning it on again while it runs must not reload (that would stop it).
	sys.takeCalls()
	if _, err := Enable(context.Background(), env, e, Options{}); err != nil {
		t.Fatal(err)
	}
	if calls := sys.takeCalls(); !reflect.DeepEqual(calls, []string{"launchctl print gui/501/" + Label}) {
		t.Errorf("second on ran %q", calls)
	}

	// Off while running: the file goes, the running bridge stays.
	res, err = Disable(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if calls := sys.takeCalls(); slices.ContainsFunc(calls, func(c string) bool { return strings.Contains(c, "bootout") }) {
		t.Errorf("off stopped the running bridge: %q", calls)
	}
	if !hasNote(res, NoteStillRunning) {
		t.Errorf("result = %+v", res)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("plist still there: %v", err)
	}

	// On, the bridge exits, off: unloaded with bootout.
	pid = 0
	loaded = false
	Enable(context.Background(), env, e, Options{})
	pid = 0
	sys.takeCalls()
	if _, err := Disable(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if calls := sys.takeCalls(); !slices.Contains(calls, "launchctl bootout gui/501/"+Label) {
		t.Errorf("off of a loaded, stopped agent ran %q", calls)
	}
	assertEmptyDir(t, filepath.Join(env.Home, "Library", "LaunchAgents"))
}

func TestLinuxSystemdEnableDisable(t *testing.T) {
	sys := &fakeSystem{}
	active := false
	sys.answer = func(line string) (string, error) {
		switch line {
		case "systemctl --user is-active popbridge.service":
			if active {
				return "active\n", nil
			}
			return "inactive\n", errExit1
		case "systemctl --user is-enabled popbridge.service":
			return "enabled\n", nil
		case "systemctl --user enable --now popbridge.service":
			active = true
		}
		return "", nil
	}
	env := newEnv(t, "linux", sys, map[string]string{"XDG_CONFIG_HOME": ""})
	e := Entry{Exe: touch(t, env.Home, "bin", "popbridge"), Args: Args(touch(t, env.Home, ".config", "popbridge", "popbridge.toml"))}
	res, err := Enable(context.Background(), env, e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{"systemctl --user show-environment", "systemctl --user daemon-reload", "systemctl --user enable --now popbridge.service"}
	if calls := sys.takeCalls(); !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("commands = %q, want %q", calls, wantCalls)
	}
	unit := filepath.Join(env.Home, ".config", "systemd", "user", "popbridge.service")
	data, err := os.ReadFile(unit)
	if err != nil || string(data) != SystemdUnit(e) {
		t.Fatalf("unit on disk: %v\n%s", err, data)
	}
	if res.Method != MethodSystemdUser {
		t.Errorf("method = %s", res.Method)
	}
	st, _ := Check(context.Background(), env, "")
	if !st.Enabled || st.State != "enabled, active" || !reflect.DeepEqual(st.Command, e.Command()) || len(st.Problems) != 0 {
		t.Errorf("status = %+v", st)
	}

	res, err = Disable(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	calls := sys.takeCalls()
	for _, want := range []string{"systemctl --user disable popbridge.service", "systemctl --user daemon-reload"} {
		if !slices.Contains(calls, want) {
			t.Errorf("off did not run %q: %q", want, calls)
		}
	}
	if slices.ContainsFunc(calls, func(c string) bool { return strings.Contains(c, " stop ") }) {
		t.Errorf("off stopped the service: %q", calls)
	}
	if !hasNote(res, NoteStillRunning) {
		t.Errorf("no still-running note: %+v", res)
	}
	assertEmptyDir(t, filepath.Join(env.Home, ".config", "systemd", "user"))
	if _, err := os.Stat(RecordPath(env)); !os.IsNotExist(err) {
		t.Errorf("record still there")
	}
}

// TestNoUserSystemd: without a systemd user manager and without a desktop
// session, on fails with the plain message and writes nothing; with a
// desktop session it falls back to XDG autostart, and off removes that.
func TestNoUserSystemd(t *testing.T) {
	sys := &fakeSystem{answer: func(line string) (string, error) {
		if line == "systemctl --user show-environment" {
			return "Failed to connect to bus: No medium found\n", errExit1
		}
		return "", nil
	}}
	env := newEnv(t, "linux", sys, nil)
	e := Entry{Exe: "/opt/popbridge/popbridge", Args: Args("/home/taro/popbridge.toml")}
	_, err := Enable(context.Background(), env, e, Options{})
	if !errors.Is(err, ErrNoUserSystemd) {
		t.Fatalf("Enable = %v, want ErrNoUserSystemd", err)
	}
	for _, want := range []string{"Failed to connect to bus: No medium found", "Startup Applications", "@reboot /opt/popbridge/popbridge start -autostart -config /home/taro/popbridge.toml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	assertEmptyDir(t, env.Home)

	env.Getenv = func(k string) string {
		if k == "XDG_CURRENT_DESKTOP" {
			return "GNOME"
		}
		return ""
	}
	res, err := Enable(context.Background(), env, e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	desk := filepath.Join(env.Home, ".config", "autostart", "popbridge.desktop")
	if b, err := os.ReadFile(desk); err != nil || string(b) != DesktopEntry(e) {
		t.Errorf("desktop file: %v\n%s", err, b)
	}
	if res.Method != MethodXDGAutostart || !hasNote(res, NoteXDGFallback) {
		t.Errorf("result = %+v", res)
	}
	st, _ := Check(context.Background(), env, "")
	if !st.Enabled || st.Method != MethodXDGAutostart || !reflect.DeepEqual(st.Command, e.Command()) {
		t.Errorf("status = %+v", st)
	}
	if _, err := Disable(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	assertEmptyDir(t, filepath.Join(env.Home, ".config", "autostart"))
}

// TestNoUserSystemdHere runs the real systemctl of this machine: where it
// has no user manager (a CI container), on gives the message and leaves
// nothing behind.
func TestNoUserSystemdHere(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	env, err := DefaultEnv()
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := userSystemd(context.Background(), env); ok {
		t.Skip("this machine has a systemd user manager")
	}
	home := t.TempDir()
	env.Home, env.ConfigDir = home, filepath.Join(home, "config")
	env.Getenv = func(string) string { return "" }
	_, err = Enable(context.Background(), env, Entry{Exe: "/usr/bin/popbridge", Args: Args("/etc/popbridge.toml")}, Options{})
	if !errors.Is(err, ErrNoUserSystemd) || !strings.Contains(err.Error(), "crontab -e") {
		t.Fatalf("Enable = %v, want ErrNoUserSystemd with what to do", err)
	}
	assertEmptyDir(t, home)
	st, err := Check(context.Background(), env, "")
	if err != nil || st.Enabled {
		t.Errorf("Check = %+v, %v", st, err)
	}
}

// TestSwitchMethod: from the desktop fallback to systemd, the old entry
// goes.
func TestSwitchMethod(t *testing.T) {
	haveSystemd := false
	sys := &fakeSystem{answer: func(line string) (string, error) {
		if line == "systemctl --user show-environment" && !haveSystemd {
			return "Failed to connect to bus", errExit1
		}
		return "", nil
	}}
	env := newEnv(t, "linux", sys, map[string]string{"DESKTOP_SESSION": "xfce"})
	e := Entry{Exe: "/opt/pb/popbridge", Args: Args("/home/t/p.toml")}
	if _, err := Enable(context.Background(), env, e, Options{}); err != nil {
		t.Fatal(err)
	}
	haveSystemd = true
	res, err := Enable(context.Background(), env, e, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodSystemdUser || !slices.Contains(res.Changed, "removed "+desktopPath(env)) {
		t.Errorf("result = %+v", res)
	}
	if _, err := os.Stat(desktopPath(env)); !os.IsNotExist(err) {
		t.Error("desktop entry still there")
	}
	if _, err := os.Stat(unitPath(env)); err != nil {
		t.Error(err)
	}
}

// TestDisableUnrecorded: the record is lost; off still removes a
// popbridge unit at the standard place, and nothing else.
func TestDisableUnrecorded(t *testing.T) {
	sys := &fakeSystem{}
	env := newEnv(t, "linux", sys, nil)
	os.MkdirAll(unitDir(env), 0o755)
	os.WriteFile(unitPath(env), []byte(SystemdUnit(Entry{Exe: "/x/popbridge", Args: Args("/c.toml")})), 0o644)
	other := filepath.Join(unitDir(env), "other.service")
	os.WriteFile(other, []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	st, _ := Check(context.Background(), env, "")
	if !st.Enabled || !hasProblem(st, ProblemUnrecorded) {
		t.Errorf("status = %+v", st)
	}
	res, err := Disable(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(unitPath(env)); !os.IsNotExist(err) {
		t.Errorf("unit still there; result %+v", res)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("other unit removed: %v", err)
	}
	res, _ = Disable(context.Background(), env)
	if !hasNote(res, NoteNothing) {
		t.Errorf("second off = %+v", res)
	}
}

func TestCheckExe(t *testing.T) {
	if err := checkExe("/tmp/go-build123/b001/exe/popbridge", "/tmp"); err == nil || !strings.Contains(err.Error(), "go run") {
		t.Errorf("go run binary: %v", err)
	}
	if err := checkExe("/private/var/folders/x/AppTranslocation/ABC/d/popbridge", "/tmp"); err == nil || !strings.Contains(err.Error(), "App Translocation") {
		t.Errorf("translocated: %v", err)
	}
	if err := checkExe("/usr/local/bin/popbridge", "/tmp"); err != nil {
		t.Errorf("installed binary: %v", err)
	}
}

func TestStaleEntryProblems(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks real paths of this OS")
	}
	sys := &fakeSystem{answer: func(line string) (string, error) {
		if strings.HasSuffix(line, "is-enabled popbridge.service") {
			return "enabled\n", nil
		}
		return "", nil
	}}
	env := newEnv(t, "linux", sys, nil)
	exe, _ := os.Executable()
	gone := filepath.Join(env.Home, "moved", "popbridge")
	if _, err := Enable(context.Background(), env, Entry{Exe: gone, Args: Args(filepath.Join(env.Home, "gone.toml"))}, Options{}); err != nil {
		t.Fatal(err)
	}
	st, _ := Check(context.Background(), env, exe)
	if !hasProblem(st, ProblemMissingExe) || !hasProblem(st, ProblemMissingConfig) {
		t.Errorf("status = %+v", st)
	}
	cfg := filepath.Join(env.Home, "p.toml")
	os.WriteFile(cfg, nil, 0o600)
	Enable(context.Background(), env, Entry{Exe: "/bin/sh", Args: Args(cfg)}, Options{})
	st, _ = Check(context.Background(), env, exe)
	if !hasProblem(st, ProblemOtherExe) || hasProblem(st, ProblemMissingConfig) || hasProblem(st, ProblemMissingExe) {
		t.Errorf("status = %+v", st)
	}
}

// touch creates an empty file under dir and returns its path.
func touch(t *testing.T, dir string, elem ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{dir}, elem...)...)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func hasNote(r *Result, code string) bool {
	return r != nil && slices.ContainsFunc(r.Notes, func(n Note) bool { return n.Code == code })
}

func hasProblem(s *Status, code string) bool {
	return s != nil && slices.ContainsFunc(s.Problems, func(p Problem) bool { return p.Code == code })
}

// assertEmptyDir fails when dir holds any file (empty directories are
// fine: they were there before or are the user's).
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", p)
		}
		return nil
	})
}
