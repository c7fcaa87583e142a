// Package autostart makes popbridge start with the user's session, without
// administrator rights: `popbridge autostart on|off|status` and the
// console's switch call Enable, Disable and Check.
//
// Implementation notes:
//
//   - One entry per user, named "popbridge", pointing at the installed
//     binary (symlinks resolved) with `start -autostart -config <file>`:
//     Windows: the value "popbridge" under HKCU\Software\Microsoft\Windows\
//     CurrentVersion\Run, running popbridgew.exe (the GUI-subsystem build
//     beside popbridge.exe, so no console window opens at sign-in);
//     macOS: a LaunchAgent ~/Library/LaunchAgents/<Label>.plist loaded with
//     `launchctl bootstrap gui/<uid>`; Linux: a systemd user unit
//     ~/.config/systemd/user/popbridge.service enabled with `systemctl
//     --user enable --now`, or, where there is no systemd user manager but a
//     desktop session, an XDG autostart entry ~/.config/autostart/
//     popbridge.desktop. Without either, Enable fails with ErrNoUserSystemd
//     and a message saying what to do instead.
//   - What Enable made is recorded in <user config dir>/popbridge/
//     autostart.json; Disable undoes exactly that (and, when the record is
//     lost, removes an entry it finds at the standard places only if it runs
//     popbridge).
//   - Neither Enable nor Disable stops a running bridge: the console that
//     flips the switch runs inside it. Enable starts the entry now where the
//     service manager does so itself (launchd, systemd); that second
//     popbridge finds the first running and exits quietly (start -autostart).
//     Disable leaves a running bridge alone until it exits or the session
//     ends.
//   - Everything that touches the system goes through Env (home, uid, a
//     command Runner, the registry), so the generated plist, unit, desktop
//     entry, registry values and commands of all three systems are checked
//     by table tests on any OS.
package autostart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/popbridge/popbridge/internal/fsutil"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Name is the entry's name: the registry value, the unit and desktop file
// base name.
const Name = "popbridge"

// Label is the LaunchAgent's label (reverse DNS of the project's home).
const Label = "com.github.popbridge.popbridge"

// Methods: how the entry is installed.
const (
	MethodRegistryRun  = "registry-run"  // Windows HKCU Run value
	MethodLaunchAgent  = "launchagent"   // macOS
	MethodSystemdUser  = "systemd-user"  // Linux, systemd user unit
	MethodXDGAutostart = "xdg-autostart" // Linux desktops without user systemd
)

// ErrNoUserSystemd means Linux without a systemd user manager and without
// a desktop session for an XDG autostart entry. Its wrapping error says
// what to do instead.
var ErrNoUserSystemd = errors.New("no systemd user manager")

// ErrUnsupported is an operating system autostart does not know.
var ErrUnsupported = errors.New("autostart is not supported on this system")

// Runner runs a command and returns its combined output.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs commands with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Registry is the current user's registry hive (HKEY_CURRENT_USER). Keys
// are given without the hive, e.g. `Software\Microsoft\Windows\…\Run`.
type Registry interface {
	// GetString returns a REG_SZ value; ok is false when it is absent.
	GetString(key, name string) (value string, ok bool, err error)
	// SetString creates the key if needed and sets a REG_SZ value.
	SetString(key, name, value string) error
	// GetBinary returns a REG_BINARY value; ok is false when it is absent.
	GetBinary(key, name string) (value []byte, ok bool, err error)
	// DeleteValue deletes a value; an absent value or key is no error.
	DeleteValue(key, name string) error
}

// Env is the system autostart works on. DefaultEnv describes this one.
type Env struct {
	GOOS      string
	Home      string // the user's home directory
	ConfigDir string // the user config dir (os.UserConfigDir); the record lives in ConfigDir/popbridge
	UID       int    // macOS: the gui/<uid> launchd domain
	Getenv    func(string) string
	Run       Runner
	LookPath  func(string) (string, error)
	Registry  Registry // Windows only
}

// DefaultEnv is this machine and user.
func DefaultEnv() (Env, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Env{}, fmt.Errorf("autostart: %w", err)
	}
	cfg, err := os.UserConfigDir()
	if err != nil {
		return Env{}, fmt.Errorf("autostart: %w", err)
	}
	return Env{
		GOOS:      runtime.GOOS,
		Home:      home,
		ConfigDir: cfg,
		UID:       os.Getuid(),
		Getenv:    os.Getenv,
		Run:       ExecRunner,
		LookPath:  exec.LookPath,
		Registry:  systemRegistry(),
	}, nil
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// Entry is what the autostart entry runs.
type Entry struct {
	// Exe is the absolute path of the binary, symlinks resolved. On
	// Windows, popbridgew.exe when it is beside popbridge.exe.
	Exe string `json:"exe"`
	// Args are the arguments after Exe.
	Args []string `json:"args"`
	// Config is the absolute config file path (also in Args).
	Config string `json:"config"`
	// LogDir receives launchd's stdout/stderr of the process (a crash's
	// trace); the bridge itself logs to the rotating file there. "" : none.
	LogDir string `json:"log_dir,omitempty"`
}

// Command is Exe followed by Args.
func (e Entry) Command() []string { return append([]string{e.Exe}, e.Args...) }

// Args returns the arguments an autostart entry passes to popbridge.
func Args(configPath string) []string {
	return []string{"start", "-autostart", "-config", configPath}
}

// NewEntry describes this running binary started with configPath; logDir
// is where launchd puts the process's own output (see Entry.LogDir). It
// refuses binaries that would not survive a reboot (go run's temporary
// build, macOS App Translocation).
func NewEntry(configPath, logDir string) (Entry, error) {
	exe, err := os.Executable()
	if err != nil {
		return Entry{}, fmt.Errorf("autostart: cannot find this program's file: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	if err := checkExe(exe, os.TempDir()); err != nil {
		return Entry{}, err
	}
	if runtime.GOOS == "windows" {
		exe = windowsGUIExe(exe, func(p string) bool { st, err := os.Stat(p); return err == nil && st.Mode().IsRegular() })
	}
	cfg, err := filepath.Abs(configPath)
	if err != nil {
		return Entry{}, fmt.Errorf("autostart: config %s: %w", configPath, err)
	}
	return Entry{Exe: exe, Args: Args(cfg), Config: cfg, LogDir: logDir}, nil
}

// checkExe refuses a binary in a place that does not last.
func checkExe(exe, tmp string) error {
	if strings.Contains(exe, "/AppTranslocation/") {
		return errors.New("autostart: macOS runs this copy of popbridge from a temporary read-only place (App Translocation) because it was opened where it was downloaded; " +
			"move popbridge to another folder (for example your home folder or Applications), open it from there, then turn autostart on again")
	}
	if tmp != "" && strings.HasPrefix(exe, filepath.Clean(tmp)+string(filepath.Separator)) && strings.Contains(exe, "go-build") {
		return fmt.Errorf("autostart: popbridge runs from a temporary build (%s, made by go run) that will be gone after a reboot; "+
			"build or install it (go build ./cmd/popbridge, or go install), then run autostart on with that binary", exe)
	}
	return nil
}

// Record is what Enable made; Disable undoes it.
type Record struct {
	Method string `json:"method"`
	// Files Enable created (plist, unit, desktop file, the unit's
	// .wants symlink).
	Files []string `json:"files,omitempty"`
	// RegistryKey and RegistryValue name the Run value (Windows).
	RegistryKey   string `json:"registry_key,omitempty"`
	RegistryValue string `json:"registry_value,omitempty"`
	// Unit is the systemd unit name; Label the launchd label.
	Unit    string    `json:"unit,omitempty"`
	Label   string    `json:"label,omitempty"`
	Entry   Entry     `json:"entry"`
	Created time.Time `json:"created"`
	// SHA256 of each file's content as written, by path: status tells a
	// file edited since.
	SHA256 map[string]string `json:"sha256,omitempty"`
}

// RecordPath is where the record lives.
func RecordPath(env Env) string { return filepath.Join(env.ConfigDir, "popbridge", "autostart.json") }

func readRecord(env Env) (*Record, error) {
	b, err := os.ReadFile(RecordPath(env))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("autostart: read %s: %w", RecordPath(env), err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("autostart: %s is damaged (%v); delete it and run autostart on again", RecordPath(env), err)
	}
	return &r, nil
}

func writeRecord(env Env, r *Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(RecordPath(env), append(b, '\n'), 0o600)
}

// writeFileAtomic writes through a temporary file and a rename, creating
// the directory (0700 when new).
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, mode)
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Result is what Enable or Disable did, for the user.
type Result struct {
	Method string `json:"method,omitempty"`
	// Changed lists what was created, changed or removed: paths, registry
	// values, commands run.
	Changed []string `json:"changed,omitempty"`
	// Notes are things the user should know (in English; Code says which,
	// for the console's own texts).
	Notes []Note `json:"notes,omitempty"`
}

// Note is one remark about the result; Code is stable for the console.
type Note struct {
	Code string `json:"code"`
	Text string `json:"text"`
}

func (r *Result) note(code, format string, args ...any) {
	r.Notes = append(r.Notes, Note{Code: code, Text: fmt.Sprintf(format, args...)})
}

// Note codes.
const (
	NoteNotLoaded      = "not-loaded"       // macOS: launchctl refused; loaded at next login
	NoteNextLogin      = "next-login"       // takes effect at the next sign-in
	NoteStillRunning   = "still-running"    // Disable: the bridge keeps running until it exits
	NoteConsoleWindow  = "console-window"   // Windows: no popbridgew.exe, a console window will show
	NoteStartupEnabled = "startup-approved" // Windows: re-enabled an entry disabled in Task Manager
	NoteXDGFallback    = "xdg-fallback"     // Linux: desktop autostart instead of systemd
	NoteNothing        = "nothing"          // Disable: there was no entry
	NoteEdited         = "edited"           // Disable: a file was changed since Enable made it
)

// Options tune Enable.
type Options struct {
	// Method forces a method on Linux: MethodSystemdUser or
	// MethodXDGAutostart. "": systemd when there is a user manager, else
	// XDG when there is a desktop session.
	Method string
}

// Enable installs the entry (replacing one made before) and records it.
func Enable(ctx context.Context, env Env, e Entry, opts Options) (*Result, error) {
	if e.Exe == "" || len(e.Args) == 0 {
		return nil, errors.New("autostart: no program to start")
	}
	old, err := readRecord(env)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var rec *Record
	switch env.GOOS {
	case "windows":
		rec, err = enableWindows(env, e, res)
	case "darwin":
		rec, err = enableDarwin(ctx, env, e, res)
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		rec, err = enableLinux(ctx, env, e, opts, old, res)
	default:
		return nil, fmt.Errorf("%w (%s)", ErrUnsupported, env.GOOS)
	}
	if err != nil {
		return res, err
	}
	// A different method or different files before: undo the old one.
	if old != nil && (old.Method != rec.Method || !sameFiles(old.Files, rec.Files)) {
		keep := map[string]bool{}
		for _, f := range rec.Files {
			keep[f] = true
		}
		undo(ctx, env, old, keep, res)
	}
	rec.Entry = e
	rec.Created = time.Now().UTC().Truncate(time.Second)
	res.Method = rec.Method
	if err := writeRecord(env, rec); err != nil {
		return res, fmt.Errorf("autostart: the entry is installed, but recording it in %s failed: %w", RecordPath(env), err)
	}
	return res, nil
}

func sameFiles(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Disable removes what Enable made. Without a record it looks for an
// entry at the standard places and removes it if it runs popbridge.
func Disable(ctx context.Context, env Env) (*Result, error) {
	rec, err := readRecord(env)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	if rec == nil {
		rec = findUnrecorded(env)
		if rec == nil {
			res.note(NoteNothing, "autostart was not on: nothing to remove")
			return res, nil
		}
	}
	res.Method = rec.Method
	if err := undo(ctx, env, rec, nil, res); err != nil {
		return res, err
	}
	if err := os.Remove(RecordPath(env)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("autostart: remove %s: %w", RecordPath(env), err)
	}
	return res, nil
}

// undo removes what rec made, except the files in keep.
func undo(ctx context.Context, env Env, rec *Record, keep map[string]bool, res *Result) error {
	for _, f := range rec.Files {
		if b, err := os.ReadFile(f); err == nil && !keep[f] && rec.SHA256[f] != "" && sum(b) != rec.SHA256[f] {
			res.note(NoteEdited, "%s was changed after autostart made it; removed all the same", f)
		}
	}
	var errs []error
	switch rec.Method {
	case MethodRegistryRun:
		errs = append(errs, disableWindows(env, rec, res))
	case MethodLaunchAgent:
		errs = append(errs, disableDarwin(ctx, env, rec, keep, res))
	case MethodSystemdUser:
		errs = append(errs, disableSystemd(ctx, env, rec, keep, res))
	}
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
	return errors.Join(errs...)
}

// findUnrecorded returns a record for an entry at the standard place that
// runs popbridge, or nil.
func findUnrecorded(env Env) *Record {
	ours := func(path string) bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(strings.ToLower(string(b)), "popbridge")
	}
	switch env.GOOS {
	case "windows":
		if env.Registry == nil {
			return nil
		}
		v, ok, err := env.Registry.GetString(RunKey, Name)
		if err != nil || !ok || !strings.Contains(strings.ToLower(v), "popbridge") {
			return nil
		}
		return &Record{Method: MethodRegistryRun, RegistryKey: RunKey, RegistryValue: Name}
	case "darwin":
		p := plistPath(env)
		if !ours(p) {
			return nil
		}
		return &Record{Method: MethodLaunchAgent, Label: Label, Files: []string{p}}
	default:
		var files []string
		method := ""
		if p := unitPath(env); ours(p) {
			method = MethodSystemdUser
			files = append(files, p)
			if w := wantsPath(env); isSymlinkTo(w, p) {
				files = append(files, w)
			}
		}
		if p := desktopPath(env); ours(p) {
			if method == "" {
				method = MethodXDGAutostart
			}
			files = append(files, p)
		}
		if method == "" {
			return nil
		}
		return &Record{Method: method, Unit: Name + ".service", Files: files}
	}
}

func isSymlinkTo(link, target string) bool {
	t, err := os.Readlink(link)
	return err == nil && (t == target || filepath.Base(t) == filepath.Base(target))
}

// Status is what Check found.
type Status struct {
	Enabled bool   `json:"enabled"`
	Method  string `json:"method,omitempty"`
	// Where is the entry's file or registry value.
	Where string `json:"where,omitempty"`
	// Command is what the entry runs, as installed.
	Command []string `json:"command,omitempty"`
	// State is the service manager's view where it has one: launchd
	// "running"/"loaded"/"not loaded", systemd is-enabled and is-active
	// ("enabled, active"), Windows "approved"/"disabled in Task Manager".
	State string `json:"state,omitempty"`
	// Problems stop the entry from working as the user expects.
	Problems []Problem `json:"problems,omitempty"`
	Record   *Record   `json:"record,omitempty"`
}

// Problem is something wrong with an installed entry.
type Problem struct {
	Code string `json:"code"`
	Text string `json:"text"` // English
	// Params are what the text names (exe, this, config, record, path,
	// unit, state), for wording it in other languages.
	Params map[string]string `json:"params,omitempty"`
}

// Problem codes.
const (
	ProblemMissingExe    = "missing-exe"    // the entry's binary is gone (moved or deleted)
	ProblemMissingConfig = "missing-config" // the entry's config file is gone
	ProblemOtherExe      = "other-exe"      // the entry runs another popbridge binary than this one
	ProblemDisabledByOS  = "disabled-by-os" // Windows Task Manager / Settings turned it off
	ProblemNotLoaded     = "not-loaded"     // macOS: the agent is not loaded (next login)
	ProblemNotEnabled    = "not-enabled"    // systemd: the unit exists but is not enabled
	ProblemUnrecorded    = "unrecorded"     // an entry exists but autostart.json is missing
	ProblemEdited        = "edited"         // the entry was changed after Enable made it
)

// Check reports the installed entry. exe is this binary (for
// ProblemOtherExe; "" to skip that check).
func Check(ctx context.Context, env Env, exe string) (*Status, error) {
	rec, err := readRecord(env)
	if err != nil {
		return nil, err
	}
	st := &Status{Record: rec}
	unrecorded := false
	if rec == nil {
		rec = findUnrecorded(env)
		unrecorded = rec != nil
	}
	if rec == nil {
		return st, nil
	}
	st.Method = rec.Method
	switch rec.Method {
	case MethodRegistryRun:
		checkWindows(env, rec, st)
	case MethodLaunchAgent:
		checkDarwin(ctx, env, rec, st)
	case MethodSystemdUser:
		checkSystemd(ctx, env, rec, st)
	case MethodXDGAutostart:
		checkXDG(env, rec, st)
	}
	if !st.Enabled {
		return st, nil
	}
	if unrecorded {
		st.addProblem(ProblemUnrecorded, map[string]string{"record": RecordPath(env)}, "an autostart entry for popbridge exists but was not recorded (%s is missing); run autostart on again to take it over", RecordPath(env))
	}
	if len(st.Command) > 0 {
		if st.Command[0] != "" && env.GOOS == runtime.GOOS {
			if _, err := os.Stat(st.Command[0]); err != nil {
				st.addProblem(ProblemMissingExe, map[string]string{"exe": st.Command[0]}, "the entry starts %s, which no longer exists (moved or deleted?); run autostart on again from the popbridge you use now", st.Command[0])
			} else if exe != "" && !samePath(st.Command[0], exe, env.GOOS) {
				st.addProblem(ProblemOtherExe, map[string]string{"exe": st.Command[0], "this": exe}, "the entry starts %s, not this popbridge (%s); run autostart on again to switch", st.Command[0], exe)
			}
		}
		if cfg := configArg(st.Command); cfg != "" && env.GOOS == runtime.GOOS {
			if _, err := os.Stat(cfg); err != nil {
				st.addProblem(ProblemMissingConfig, map[string]string{"config": cfg}, "the entry uses the config file %s, which no longer exists; run autostart on again", cfg)
			}
		}
	}
	return st, nil
}

func (s *Status) addProblem(code string, params map[string]string, format string, args ...any) {
	s.Problems = append(s.Problems, Problem{Code: code, Text: fmt.Sprintf(format, args...), Params: params})
}

func configArg(cmd []string) string {
	for i := 0; i+1 < len(cmd); i++ {
		if cmd[i] == "-config" || cmd[i] == "--config" {
			return cmd[i+1]
		}
	}
	return ""
}

// samePath compares paths, and on Windows also popbridge.exe with
// popbridgew.exe beside it.
func samePath(a, b, goos string) bool {
	if goos == "windows" {
		a, b = strings.ToLower(a), strings.ToLower(b)
		a = strings.TrimSuffix(strings.TrimSuffix(a, ".exe"), "w")
		b = strings.TrimSuffix(strings.TrimSuffix(b, ".exe"), "w")
	}
	return a == b
}
