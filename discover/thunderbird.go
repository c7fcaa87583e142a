package discover

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Thunderbird keeps a profiles.ini next to its profiles:
//
//	Windows  %APPDATA%\Thunderbird\profiles.ini
//	macOS    ~/Library/Thunderbird/profiles.ini
//	Linux    ~/.thunderbird/profiles.ini, the snap's
//	         ~/snap/thunderbird/common/.thunderbird, the flatpak's
//	         ~/.var/app/org.mozilla.Thunderbird/.thunderbird, and the old
//	         Debian names ~/.icedove and ~/.mozilla-thunderbird
//
// Each [ProfileN] section names a profile directory (Path, relative to the
// ini's directory when IsRelative=1). A profile is a store when it has
// local mail (a Mail directory). An account whose mail directory the user
// moved out of the profile (prefs.js, mail.server.serverN.directory) is a
// store of its own.

func init() { Register("thunderbird", findThunderbird) }

// thunderbirdRoots lists the directories that may hold profiles.ini.
func thunderbirdRoots(env Env) []string {
	var roots []string
	add := func(parts ...string) {
		for _, p := range parts {
			if p == "" {
				return
			}
		}
		roots = append(roots, filepath.Join(parts...))
	}
	switch env.GOOS {
	case "windows":
		if env.AppData != "" {
			add(env.AppData, "Thunderbird")
		} else {
			add(env.Home, "AppData", "Roaming", "Thunderbird")
		}
	case "darwin":
		add(env.Home, "Library", "Thunderbird")
	default:
		add(env.Home, ".thunderbird")
		add(env.Home, "snap", "thunderbird", "common", ".thunderbird")
		add(env.Home, ".var", "app", "org.mozilla.Thunderbird", ".thunderbird")
		add(env.Home, ".icedove")
		add(env.Home, ".mozilla-thunderbird")
	}
	return roots
}

func findThunderbird(env Env) []Store {
	var out []Store
	seen := map[string]bool{}
	for _, root := range thunderbirdRoots(env) {
		data, err := os.ReadFile(filepath.Join(root, "profiles.ini"))
		if err != nil {
			continue
		}
		for _, p := range parseProfiles(data) {
			dir := p.path
			if p.relative {
				dir = filepath.Join(root, filepath.FromSlash(dir))
			}
			dir = filepath.Clean(dir)
			if seen[dir] || !tbIsDir(dir) {
				continue
			}
			seen[dir] = true
			if tbIsDir(filepath.Join(dir, "Mail")) {
				out = append(out, Store{Path: dir, Format: "thunderbird", Client: "Thunderbird", Name: p.name})
			}
			// Mail directories moved out of the profile.
			prefs, err := os.ReadFile(filepath.Join(dir, "prefs.js"))
			if err != nil {
				continue
			}
			for _, md := range tbMailDirectories(prefs) {
				md = filepath.Clean(md)
				if !filepath.IsAbs(md) || seen[md] || strings.HasPrefix(md, dir+string(filepath.Separator)) || !tbIsDir(md) {
					continue
				}
				seen[md] = true
				name := filepath.Base(md)
				if p.name != "" {
					name = p.name + " – " + name
				}
				out = append(out, Store{Path: md, Format: "thunderbird", Client: "Thunderbird", Name: name})
			}
		}
	}
	return out
}

func tbIsDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// tbProfile is one [ProfileN] of profiles.ini.
type tbProfile struct {
	name      string
	path      string
	relative  bool
	isDefault bool
}

// parseProfiles reads the profiles of a profiles.ini (the default profile
// first, then in file order). Anything it does not understand is skipped.
func parseProfiles(data []byte) []tbProfile {
	var out []tbProfile
	for _, sec := range tbParseINI(data) {
		if !strings.HasPrefix(strings.ToLower(sec.name), "profile") {
			continue
		}
		p := tbProfile{name: sec.values["name"], path: sec.values["path"], relative: sec.values["isrelative"] != "0", isDefault: sec.values["default"] == "1"}
		if p.path == "" || strings.ContainsRune(p.path, 0) {
			continue
		}
		out = append(out, p)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].isDefault && !out[j].isDefault })
	return out
}

// tbINISection is one [section] of an INI file; keys are lower-cased.
type tbINISection struct {
	name   string
	values map[string]string
}

// parseINI reads the sections of an INI file: "[name]" headers, "key=value"
// lines, ";" and "#" comments, LF or CRLF, an optional UTF-8 byte order
// mark. Lines outside a section are ignored; a repeated key keeps its
// first value.
func tbParseINI(data []byte) []tbINISection {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []tbINISection
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == ';' || line[0] == '#':
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				continue
			}
			out = append(out, tbINISection{name: strings.TrimSpace(line[1:end]), values: map[string]string{}})
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || len(out) == 0 {
				continue
			}
			k = strings.ToLower(strings.TrimSpace(k))
			if _, dup := out[len(out)-1].values[k]; !dup {
				out[len(out)-1].values[k] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// tbPrefDirRe matches the prefs.js lines naming an account's mail directory.
var tbPrefDirRe = regexp.MustCompile(`^\s*user_pref\(\s*"mail\.server\.[A-Za-z0-9_]+\.directory"\s*,\s*("(?:[^"\\]|\\.)*")\s*\)\s*;`)

// mailDirectories returns the mail directories named in a prefs.js
// (mail.server.serverN.directory; the -rel variants are inside the
// profile and left out).
func tbMailDirectories(prefs []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(prefs))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m := tbPrefDirRe.FindSubmatch(sc.Bytes())
		if m == nil {
			continue
		}
		s, ok := tbJSString(string(m[1]))
		if ok && s != "" && !strings.ContainsRune(s, 0) {
			out = append(out, s)
		}
	}
	return out
}

// jsString decodes a double-quoted JavaScript string literal as prefs.js
// writes them (\\, \", \n, \t, \uXXXX).
func tbJSString(lit string) (string, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", false
	}
	in := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(in) {
			return "", false
		}
		switch in[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'u':
			if i+4 >= len(in) {
				return "", false
			}
			n, err := strconv.ParseUint(in[i+1:i+5], 16, 16)
			if err != nil {
				return "", false
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteByte(in[i])
		}
	}
	return b.String(), true
}
