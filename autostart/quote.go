package autostart

import (
	"errors"
	"strings"
)

// windowsCommandLine joins a command for a Run value: the program always in
// quotes (argv[0] takes no escapes, and paths have spaces), the arguments
// quoted when needed by the rules of CommandLineToArgvW (as Go's
// syscall.EscapeArg, which exists only on Windows).
func windowsCommandLine(cmd []string) string {
	var b strings.Builder
	for i, a := range cmd {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 {
			b.WriteString(`"` + a + `"`)
			continue
		}
		b.WriteString(windowsQuote(a))
	}
	return b.String()
}

func windowsQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1))
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(c)
	}
	b.WriteString(strings.Repeat(`\`, slashes))
	b.WriteByte('"')
	return b.String()
}

// splitWindowsCommandLine is CommandLineToArgvW: the program up to the next
// quote or blank, then arguments with the backslash and quote rules.
func splitWindowsCommandLine(s string) []string {
	var out []string
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return nil
	}
	if s[0] == '"' {
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return []string{s[1:]}
		}
		out = append(out, s[1:1+end])
		s = s[2+end:]
	} else {
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			return []string{s}
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	var cur strings.Builder
	inArg, inQuote := false, false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					i++
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
			inArg = true
			continue
		case c == '"':
			if inQuote && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"')
				i += 2
				inArg = true
				continue
			}
			inQuote = !inQuote
			inArg = true
		case (c == ' ' || c == '\t') && !inQuote:
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
		i++
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out
}

// systemdExec joins a command for ExecStart=: "%" and "$" doubled (no
// specifiers, no variables), arguments with blanks, quotes, backslashes or
// ";" in double quotes with C escapes.
func systemdExec(cmd []string) string {
	parts := make([]string, len(cmd))
	for i, a := range cmd {
		a = strings.ReplaceAll(a, "%", "%%")
		a = strings.ReplaceAll(a, "$", "$$")
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\;") {
			r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
			a = `"` + r.Replace(a) + `"`
		}
		parts[i] = a
	}
	return strings.Join(parts, " ")
}

// splitSystemdExec undoes systemdExec (and reads the same subset of
// systemd's syntax written by hand).
func splitSystemdExec(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inArg := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		case c == '"' || c == '\'':
			q := c
			inArg = true
			i++
			for ; i < len(s) && s[i] != q; i++ {
				if (s[i] == '%' || s[i] == '$') && i+1 < len(s) && s[i+1] == s[i] {
					cur.WriteByte(s[i])
					i++
					continue
				}
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						cur.WriteByte('\n')
					case 't':
						cur.WriteByte('\t')
					default:
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated quote")
			}
		case c == '%' && i+1 < len(s) && s[i+1] == '%', c == '$' && i+1 < len(s) && s[i+1] == '$':
			cur.WriteByte(c)
			inArg = true
			i++
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

// desktopExec joins a command for a desktop entry's Exec key (Desktop Entry
// Specification, "The Exec key"): arguments with reserved characters in
// double quotes with `"`, "`", "$" and "\" escaped, "%" doubled; then the
// string-value escaping of the file doubles every backslash.
func desktopExec(cmd []string) string {
	parts := make([]string, len(cmd))
	for i, a := range cmd {
		a = strings.ReplaceAll(a, "%", "%%")
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\><~|&;$*?#()`") {
			r := strings.NewReplacer(`"`, `\"`, "`", "\\`", `$`, `\$`, `\`, `\\`)
			a = `"` + r.Replace(a) + `"`
		}
		parts[i] = a
	}
	return strings.ReplaceAll(strings.Join(parts, " "), `\`, `\\`)
}
