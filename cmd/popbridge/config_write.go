package main

// Writing popbridge.toml: the console's setup saves the same file the CLI
// reads, with comments, so that a person who opens it understands it.
//
// Implementation notes:
//   - Every value is written from a validated Config. A key whose value is
//     the default is written commented out ("#key = default"), so defaults
//     stay defaults and the file still shows them.
//   - Secrets the console receives are never written into this file: they
//     go to files of their own in data_dir/secrets (mode 0600) that
//     password_file names. An inline password the user wrote by hand is
//     kept as it is.
//   - The result is parsed again before it replaces the file; a file that
//     would not load is never written.

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tomlString quotes s for TOML: a literal string ('…') when it can be one
// (Windows paths stay readable), else a basic string with escapes.
func tomlString(s string) string {
	literal := !strings.ContainsAny(s, "'\r\n")
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			literal = false
		}
	}
	if literal && strings.Contains(s, `\`) {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// confWriter builds the file.
type confWriter struct{ b strings.Builder }

func (w *confWriter) comment(lines ...string) {
	for _, l := range lines {
		if l == "" {
			w.b.WriteString("#\n")
			continue
		}
		w.b.WriteString("# " + l + "\n")
	}
}

func (w *confWriter) blank() { w.b.WriteString("\n") }

func (w *confWriter) table(h string) { w.b.WriteString(h + "\n") }

// kv writes key = value, commented out when isDefault.
func (w *confWriter) kv(key, value string, isDefault bool) {
	if isDefault {
		w.b.WriteString("#")
	}
	w.b.WriteString(key + " = " + value + "\n")
}

// renderConfig writes c as a commented popbridge.toml.
func renderConfig(c *Config, now time.Time) []byte {
	w := &confWriter{}
	w.comment(
		"popbridge configuration, written by popbridge on "+now.Format("2006-01-02 15:04")+".",
		"The console (popbridge with no command, or \"popbridge console\") changes it",
		"for you; you may also edit it by hand. config.example.toml explains every",
		"key. A line starting with \"#key =\" shows a default: remove the \"#\" to",
		"change it. Keep this file private (only you can read it).",
	)
	w.blank()
	w.comment("data_dir: where popbridge keeps its own state (the index, the messages",
		"you file into local folders, certificates, passwords it saved for you).")
	def, _ := defaultDataDir()
	w.kv("data_dir", tomlString(c.DataDir), c.DataDir == def)
	w.blank()

	w.table("[listen]")
	w.comment("Where mail apps (phone, tablet, Thunderbird…) connect to the bridge.",
		"127.0.0.1: this computer only; 0.0.0.0: the local network too (logins",
		"from the network need TLS: imaps, or STARTTLS on imap). \"off\" disables one.")
	addr := func(key, v, d string) {
		if v == "" {
			w.kv(key, `"off"`, false)
			return
		}
		w.kv(key, tomlString(v), v == d)
	}
	addr("imap", c.Listen.IMAP, defaultIMAP)
	addr("imaps", c.Listen.IMAPS, defaultIMAPS)
	if c.Listen.TLSCert != "" {
		w.comment("Your own certificate instead of popbridge's local CA.")
		w.kv("tls_cert", tomlString(c.Listen.TLSCert), false)
		w.kv("tls_key", tomlString(c.Listen.TLSKey), false)
	}
	w.comment("trusted_networks: where a login without TLS is accepted from.")
	w.kv("trusted_networks", tomlStrings(c.Listen.TrustedNets), slices.Equal(c.Listen.TrustedNets, defaultTrustedNets))
	w.comment("control: the local endpoint status, migrate, verify and the console use.")
	w.kv("control", tomlString(c.Listen.Control), c.Listen.Control == defaultControl)
	w.blank()

	w.comment("[[users]]: who may log in to the bridge: your devices. Not your mail",
		"password: set it in the console (Devices) or print a hash with",
		"\"popbridge passwd\".")
	if len(c.Users) == 0 {
		w.table("#[[users]]")
		w.kv("name", `"me"`, true)
		w.kv("password_hash", `"set in the console, or paste the output of: popbridge passwd"`, true)
	}
	for _, u := range c.Users {
		w.table("[[users]]")
		w.kv("name", tomlString(u.Name), false)
		w.kv("password_hash", tomlString(u.PasswordHash), false)
	}
	w.blank()

	w.table("[archive]")
	w.comment("Your old mail. popbridge only ever reads these files; it never changes,",
		"moves or deletes them. They appear to mail apps under the prefix folder.")
	w.kv("prefix", tomlString(c.Archive.Prefix), c.Archive.Prefix == defaultPrefix)
	for _, s := range c.Archive.Sources {
		w.blank()
		w.table("[[archive.sources]]")
		w.kv("path", tomlString(s.Path), false)
		w.kv("format", tomlString(s.Format), s.Format == FormatAuto || s.Format == "")
		derived := ""
		if st, err := statPath(s.Path); err == nil {
			derived = sourceName(s.Path, st, s.Format)
		}
		if s.Name != "" {
			w.kv("name", tomlString(s.Name), s.Name == derived)
		}
	}
	w.blank()

	if u := c.Upstream; u != nil {
		w.comment("[upstream]: your new mailbox, where the old mail moves to.")
		w.table("[upstream]")
		w.kv("host", tomlString(u.Host), false)
		defPort := 143
		if u.TLS == TLSImplicit {
			defPort = 993
		}
		w.kv("port", strconv.Itoa(u.Port), u.Port == defPort)
		w.kv("tls", tomlString(u.TLS), u.TLS == TLSImplicit)
		w.kv("username", tomlString(u.Username), false)
		writeSecret(w, u.Secret)
		if u.OAuth2TokenCommand != "" {
			w.kv("oauth2_token_command", tomlString(u.OAuth2TokenCommand), false)
		}
		defAuth := AuthPlain
		if u.OAuth2TokenCommand != "" || u.OAuth2 != nil {
			defAuth = AuthXOAuth2
		}
		w.kv("auth", tomlString(u.Auth), u.Auth == defAuth)
		w.kv("max_connections", strconv.Itoa(u.MaxConnections), u.MaxConnections == defaultMaxConnections)
		if u.InsecureSkipVerify {
			w.kv("insecure_skip_verify", "true", false)
		}
		if u.CACert != "" {
			w.kv("ca_cert", tomlString(u.CACert), false)
		}
		writeOAuth2(w, "[upstream.oauth2]", u.OAuth2)
		w.blank()
	} else {
		w.comment("[upstream]: your new mailbox (set it up in the console). Without it",
			"popbridge serves your old mail alone.")
		w.blank()
	}

	for _, p := range c.POP3 {
		w.comment("[[pop3]]: an old POP account popbridge keeps fetching until the move is done.")
		w.table("[[pop3]]")
		w.kv("name", tomlString(p.Name), p.Name == p.Host)
		w.kv("host", tomlString(p.Host), false)
		defPort := 110
		if p.TLS == TLSImplicit {
			defPort = 995
		}
		w.kv("port", strconv.Itoa(p.Port), p.Port == defPort)
		w.kv("tls", tomlString(p.TLS), p.TLS == TLSImplicit)
		w.kv("username", tomlString(p.Username), false)
		writeSecret(w, p.Secret)
		w.kv("interval", tomlString(p.Interval.String()), p.Interval == defaultInterval)
		leave := p.LeaveOnServer == nil || *p.LeaveOnServer
		w.kv("leave_on_server", strconv.FormatBool(leave), leave)
		if p.DeleteAfter > 0 {
			w.kv("delete_after", tomlString(p.DeleteAfter.String()), false)
		}
		w.kv("deliver_to", tomlString(p.DeliverTo), p.DeliverTo == c.Archive.Prefix+"/Inbox")
		w.kv("max_message_size", tomlString(p.MaxMessageSize.String()), p.MaxMessageSize == defaultMaxMessageSize)
		writeOAuth2(w, "[pop3.oauth2]", p.OAuth2)
		w.blank()
	}

	w.table("[migrate]")
	w.comment("What \"popbridge migrate\" (and the console's Move) copies to the server.")
	if !c.Migrate.Since.IsZero() {
		w.kv("since", c.Migrate.Since.String(), false)
	}
	if !c.Migrate.Before.IsZero() {
		w.kv("before", c.Migrate.Before.String(), false)
	}
	if len(c.Migrate.Folders) > 0 {
		keys := make([]string, 0, len(c.Migrate.Folders))
		for k := range c.Migrate.Folders {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = tomlString(k) + " = " + tomlString(c.Migrate.Folders[k])
		}
		w.kv("folders", "{ "+strings.Join(parts, ", ")+" }", false)
	}
	w.kv("daily_limit", tomlString(c.Migrate.DailyLimit.String()), c.Migrate.DailyLimit == 0)
	w.blank()

	w.table("[log]")
	w.kv("level", tomlString(c.Log.Level), c.Log.Level == "info")
	w.kv("format", tomlString(c.Log.Format), c.Log.Format == "text")
	if c.Log.File != "" {
		w.kv("file", tomlString(c.Log.File), false)
	}
	if c.Log.Trace {
		w.kv("trace", "true", false)
	}
	w.blank()

	w.table("[console]")
	w.comment("The local web console, for this computer only. \"off\" disables it.")
	if c.Console.Listen == "" {
		w.kv("listen", `"off"`, false)
	} else {
		w.kv("listen", tomlString(c.Console.Listen), c.Console.Listen == defaultConsole)
	}
	return []byte(w.b.String())
}

// writeSecret writes whichever of password, password_file and
// password_command is set.
// writeOAuth2 writes an [….oauth2] table (browser sign-in), if any. It
// comes last in its parent: TOML puts every later key into it.
func writeOAuth2(w *confWriter, table string, o *OAuth2Config) {
	if o == nil {
		return
	}
	w.table(table)
	w.kv("provider", tomlString(o.Provider), false)
	w.kv("client_id", tomlString(o.ClientID), false)
	if o.ClientSecret != "" {
		w.kv("client_secret", tomlString(o.ClientSecret), false)
	}
	if o.Tenant != "" {
		w.kv("tenant", tomlString(o.Tenant), o.Provider == "microsoft" && o.Tenant == "common")
	}
}

func writeSecret(w *confWriter, s Secret) {
	switch {
	case s.PasswordFile != "":
		w.kv("password_file", tomlString(s.PasswordFile), false)
	case s.PasswordCommand != "":
		w.kv("password_command", tomlString(s.PasswordCommand), false)
	case s.Password != "":
		w.kv("password", tomlString(s.Password), false)
	}
}
