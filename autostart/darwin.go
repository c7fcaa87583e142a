package autostart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"howett.net/plist"
)

// launchAgent is the LaunchAgent property list (launchd.plist(5)).
type launchAgent struct {
	Label            string   `plist:"Label"`
	ProgramArguments []string `plist:"ProgramArguments"`
	// RunAtLoad starts it when loaded: at login, and at once by Enable.
	RunAtLoad bool `plist:"RunAtLoad"`
	// KeepAlive {SuccessfulExit: false} restarts it after a crash, not
	// after a clean exit (quit, or "already running").
	KeepAlive map[string]bool `plist:"KeepAlive"`
	// LimitLoadToSessionType Aqua: only in the user's graphical login
	// session, not for ssh logins.
	LimitLoadToSessionType string `plist:"LimitLoadToSessionType"`
	ProcessType            string `plist:"ProcessType"`
	StandardOutPath        string `plist:"StandardOutPath,omitempty"`
	StandardErrorPath      string `plist:"StandardErrorPath,omitempty"`
}

func plistPath(env Env) string {
	return filepath.Join(env.Home, "Library", "LaunchAgents", Label+".plist")
}

// LaunchAgentPlist is the LaunchAgent file for e.
func LaunchAgentPlist(e Entry) ([]byte, error) {
	a := launchAgent{
		Label:                  Label,
		ProgramArguments:       e.Command(),
		RunAtLoad:              true,
		KeepAlive:              map[string]bool{"SuccessfulExit": false},
		LimitLoadToSessionType: "Aqua",
		ProcessType:            "Interactive",
	}
	if e.LogDir != "" {
		// Only what the process itself prints (a crash's trace): the
		// bridge logs to its rotating file in the same directory.
		a.StandardOutPath = filepath.Join(e.LogDir, "launchd.log")
		a.StandardErrorPath = a.StandardOutPath
	}
	b, err := plist.MarshalIndent(a, plist.XMLFormat, "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func domain(env Env) string { return "gui/" + strconv.Itoa(env.UID) }

// launchdState runs `launchctl print gui/<uid>/<label>`: loaded, and the
// pid when running.
func launchdState(ctx context.Context, env Env) (loaded bool, pid int) {
	out, err := env.Run(ctx, "launchctl", "print", domain(env)+"/"+Label)
	if err != nil {
		return false, 0
	}
	if m := regexp.MustCompile(`(?m)^\s*pid = (\d+)`).FindSubmatch(out); m != nil {
		pid, _ = strconv.Atoi(string(m[1]))
	}
	return true, pid
}

func enableDarwin(ctx context.Context, env Env, e Entry, res *Result) (*Record, error) {
	data, err := LaunchAgentPlist(e)
	if err != nil {
		return nil, fmt.Errorf("autostart: %w", err)
	}
	path := plistPath(env)
	if e.LogDir != "" {
		if err := os.MkdirAll(e.LogDir, 0o700); err != nil {
			return nil, fmt.Errorf("autostart: log directory %s: %w", e.LogDir, err)
		}
	}
	// ~/Library/LaunchAgents may not exist on a fresh account; launchd
	// wants the file not writable by others.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("autostart: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return nil, fmt.Errorf("autostart: write %s: %w", path, err)
	}
	res.Changed = append(res.Changed, "wrote "+path)
	rec := &Record{Method: MethodLaunchAgent, Label: Label, Files: []string{path}, SHA256: map[string]string{path: sum(data)}}
	if loaded, _ := launchdState(ctx, env); loaded {
		// Loaded already (turned on before): reloading would stop the
		// running bridge. The file takes effect at the next login.
		res.note(NoteNextLogin, "the LaunchAgent was already loaded; the updated file takes effect at your next login")
		return rec, nil
	}
	args := []string{"bootstrap", domain(env), path}
	out, err := env.Run(ctx, "launchctl", args...)
	if err != nil {
		res.note(NoteNotLoaded, "launchctl could not load the LaunchAgent now (%s); macOS loads it at your next login", firstLineOf(out, err))
		return rec, nil
	}
	res.Changed = append(res.Changed, "ran launchctl "+strings.Join(args, " "))
	return rec, nil
}

func disableDarwin(ctx context.Context, env Env, rec *Record, keep map[string]bool, res *Result) error {
	if keep[plistPath(env)] {
		return nil // replaced by an entry of the same label
	}
	loaded, pid := launchdState(ctx, env)
	switch {
	case !loaded:
	case pid != 0:
		// bootout would stop the running bridge (maybe the very one whose
		// console asked); launchd forgets the job at logout.
		res.note(NoteStillRunning, "popbridge keeps running until you quit it or log out; it will not start at the next login")
	default:
		args := []string{"bootout", domain(env) + "/" + Label}
		if out, err := env.Run(ctx, "launchctl", args...); err != nil {
			res.note(NoteStillRunning, "launchctl could not unload the LaunchAgent (%s); it is gone after you log out", firstLineOf(out, err))
		} else {
			res.Changed = append(res.Changed, "ran launchctl "+strings.Join(args, " "))
		}
	}
	return nil
}

func checkDarwin(ctx context.Context, env Env, rec *Record, st *Status) {
	path := plistPath(env)
	data, err := os.ReadFile(path)
	if err != nil {
		return
	}
	st.Enabled = true
	st.Where = path
	var a launchAgent
	if _, err := plist.Unmarshal(data, &a); err == nil {
		st.Command = a.ProgramArguments
	}
	if rec.SHA256[path] != "" && sum(data) != rec.SHA256[path] {
		st.addProblem(ProblemEdited, map[string]string{"path": path}, "%s was changed after autostart made it", path)
	}
	loaded, pid := launchdState(ctx, env)
	switch {
	case pid != 0:
		st.State = fmt.Sprintf("running (pid %d)", pid)
	case loaded:
		st.State = "loaded"
	default:
		st.State = "not loaded"
		st.addProblem(ProblemNotLoaded, nil, "the LaunchAgent is not loaded now; macOS loads it at your next login")
	}
}

func firstLineOf(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return err.Error()
	}
	return s
}
