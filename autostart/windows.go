package autostart

import (
	"bytes"
	"fmt"
	"strings"
)

// Registry keys under HKEY_CURRENT_USER.
const (
	RunKey = `Software\Microsoft\Windows\CurrentVersion\Run`
	// ApprovedKey holds what Task Manager's Startup tab and Settings >
	// Apps > Startup switch: a REG_BINARY per Run value whose first byte is
	// even when enabled (02, 06) and odd when the user turned it off (03).
	ApprovedKey = `Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run`
)

// windowsGUIExe returns popbridgew.exe beside exe when there is one (the
// build for the GUI subsystem: no console window at sign-in), else exe.
func windowsGUIExe(exe string, exists func(string) bool) string {
	i := strings.LastIndexAny(exe, `\/`)
	dir, base := exe[:i+1], exe[i+1:]
	if strings.EqualFold(base, "popbridge.exe") {
		if w := dir + "popbridgew.exe"; exists(w) {
			return w
		}
	}
	return exe
}

// RunValue is the Run value's data for e.
func RunValue(e Entry) string { return windowsCommandLine(e.Command()) }

func enableWindows(env Env, e Entry, res *Result) (*Record, error) {
	if env.Registry == nil {
		return nil, fmt.Errorf("%w: no registry access", ErrUnsupported)
	}
	val := RunValue(e)
	if err := env.Registry.SetString(RunKey, Name, val); err != nil {
		return nil, fmt.Errorf(`autostart: set HKCU\%s value %q: %w`, RunKey, Name, err)
	}
	res.Changed = append(res.Changed, fmt.Sprintf(`set HKCU\%s\%s = %s`, RunKey, Name, val))
	// Turned off in Task Manager before: the user now asks for it on.
	if b, ok, err := env.Registry.GetBinary(ApprovedKey, Name); err == nil && ok && approvedOff(b) {
		if err := env.Registry.DeleteValue(ApprovedKey, Name); err == nil {
			res.Changed = append(res.Changed, fmt.Sprintf(`removed HKCU\%s\%s (it was turned off in Task Manager)`, ApprovedKey, Name))
			res.note(NoteStartupEnabled, "autostart had been turned off in Task Manager; it is on again")
		}
	}
	if !strings.EqualFold(baseName(e.Exe), "popbridgew.exe") {
		res.note(NoteConsoleWindow, "popbridgew.exe is not beside %s, so a console window will open at sign-in; put popbridgew.exe from the download next to it and run autostart on again", e.Exe)
	}
	res.note(NoteNextLogin, "popbridge will start when you next sign in to Windows")
	return &Record{Method: MethodRegistryRun, RegistryKey: RunKey, RegistryValue: Name}, nil
}

func baseName(p string) string {
	return p[strings.LastIndexAny(p, `\/`)+1:]
}

func approvedOff(b []byte) bool { return len(b) > 0 && b[0]&1 == 1 }

func disableWindows(env Env, rec *Record, res *Result) error {
	if env.Registry == nil {
		return fmt.Errorf("%w: no registry access", ErrUnsupported)
	}
	key, name := rec.RegistryKey, rec.RegistryValue
	if key == "" {
		key, name = RunKey, Name
	}
	if _, ok, _ := env.Registry.GetString(key, name); ok {
		if err := env.Registry.DeleteValue(key, name); err != nil {
			return fmt.Errorf(`autostart: delete HKCU\%s value %q: %w`, key, name, err)
		}
		res.Changed = append(res.Changed, fmt.Sprintf(`removed HKCU\%s\%s`, key, name))
	}
	// Windows adds this when the user toggles the entry in Task Manager;
	// it would otherwise outlive the entry.
	if _, ok, _ := env.Registry.GetBinary(ApprovedKey, name); ok {
		if err := env.Registry.DeleteValue(ApprovedKey, name); err == nil {
			res.Changed = append(res.Changed, fmt.Sprintf(`removed HKCU\%s\%s`, ApprovedKey, name))
		}
	}
	res.note(NoteStillRunning, "a popbridge that is running now keeps running until you quit it or sign out")
	return nil
}

func checkWindows(env Env, rec *Record, st *Status) {
	if env.Registry == nil {
		return
	}
	key, name := rec.RegistryKey, rec.RegistryValue
	if key == "" {
		key, name = RunKey, Name
	}
	v, ok, err := env.Registry.GetString(key, name)
	if err != nil || !ok {
		return
	}
	st.Enabled = true
	st.Where = `HKCU\` + key + `\` + name
	st.Command = splitWindowsCommandLine(v)
	st.State = "approved"
	if b, ok, err := env.Registry.GetBinary(ApprovedKey, name); err == nil && ok && approvedOff(b) {
		st.State = "disabled in Task Manager"
		st.addProblem(ProblemDisabledByOS, nil, "autostart is turned off in Task Manager (Startup apps); turn popbridge on there, or run autostart on again")
	}
	if rec.Entry.Exe != "" && !bytes.Equal([]byte(v), []byte(RunValue(rec.Entry))) {
		st.addProblem(ProblemEdited, map[string]string{"path": RunKey}, "the Run value was changed after autostart made it")
	}
}
