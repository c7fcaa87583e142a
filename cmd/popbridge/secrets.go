package main

// Secrets: resolving passwords from the config, and keeping them out of
// every string and log record a Config can turn into.
//
// Implementation notes:
//   - A secret is given inline (password), in a file (password_file: its
//     first line), or by a command (password_command: the first line of its
//     stdout). Errors name the key, the file, the exit status and the first
//     line of stderr, never the secret or the command's stdout.
//   - Config, UpstreamConfig, POP3Config, UserConfig and Secret implement
//     fmt.Stringer, fmt.GoStringer and slog.LogValuer with the password,
//     password_hash, password_command and oauth2_token_command values
//     replaced by "[redacted]". (The commands are redacted too: people do
//     write `echo hunter2`.) password_file paths are shown.

import (
	"bytes"
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Secret is a password given one of three ways; at most one field is set.
// It is embedded in UpstreamConfig and POP3Config, so its keys sit inline
// in their tables.
type Secret struct {
	Password        string `toml:"password"`
	PasswordFile    string `toml:"password_file"`    // absolute after validation
	PasswordCommand string `toml:"password_command"` // run by the platform shell
	dir             string // where the command runs: the config file's directory
}

// secretCommandTimeout bounds password_command and oauth2_token_command.
const secretCommandTimeout = 30 * time.Second

const redacted = "[redacted]"

// IsSet reports whether any of the three ways is configured.
func (s Secret) IsSet() bool {
	return s.Password != "" || s.PasswordFile != "" || s.PasswordCommand != ""
}

// Resolve returns the secret. key names the table the secret belongs to
// ("upstream", "pop3[0]") in errors.
func (s Secret) Resolve(ctx context.Context, key string) (string, error) {
	switch {
	case s.Password != "":
		return s.Password, nil
	case s.PasswordFile != "":
		return readSecretFile(key+".password_file", s.PasswordFile)
	case s.PasswordCommand != "":
		return runSecretCommand(ctx, key+".password_command", s.PasswordCommand, s.dir)
	}
	return "", fmt.Errorf("%s: no password configured; set password_file, password_command or password", key)
}

// ResolvePassword resolves the upstream password.
func (u *UpstreamConfig) ResolvePassword(ctx context.Context) (string, error) {
	return u.Secret.Resolve(ctx, "upstream")
}

// OAuth2Token runs oauth2_token_command and returns the access token it
// prints. Call it again for a fresh token when the server rejects one.
func (u *UpstreamConfig) OAuth2Token(ctx context.Context) (string, error) {
	if u.OAuth2TokenCommand == "" {
		return "", errors.New("upstream: no oauth2_token_command configured")
	}
	return runSecretCommand(ctx, "upstream.oauth2_token_command", u.OAuth2TokenCommand, u.dir)
}

// ResolvePassword resolves the POP3 account's password.
func (p *POP3Config) ResolvePassword(ctx context.Context) (string, error) {
	key := p.key
	if key == "" {
		key = "pop3 " + strconv.Quote(p.Name)
	}
	return p.Secret.Resolve(ctx, key)
}

// firstLine returns b up to its first line end, without "\r\n" or "\n",
// and without a UTF-8 byte order mark (Windows editors add one).
func firstLine(b []byte) string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return string(bytes.TrimRight(b, "\r"))
}

func readSecretFile(key, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	// A password is one short line; do not read a huge file wholesale.
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", key, path, err)
	}
	secret := firstLine(data)
	if secret == "" {
		return "", fmt.Errorf("%s: the first line of %s is empty", key, path)
	}
	return secret, nil
}

// runSecretCommand runs command with the platform shell in dir and returns
// the first line of its stdout.
func runSecretCommand(parent context.Context, key, command, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(parent, secretCommandTimeout)
	defer cancel()
	cmd := shellCommand(ctx, command)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// A grandchild holding the pipes open must not outlive the timeout.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil {
		if parent.Err() != nil {
			return "", fmt.Errorf("%s: %w", key, parent.Err())
		}
		detail := err.Error()
		if ctx.Err() != nil {
			detail = fmt.Sprintf("timed out after %s", secretCommandTimeout)
		}
		if l := strings.TrimSpace(firstLine(stderr.Bytes())); l != "" {
			detail += ": " + l
		}
		return "", fmt.Errorf("%s failed: %s", key, detail)
	}
	secret := firstLine(stdout.Bytes())
	if secret == "" {
		return "", fmt.Errorf("%s printed nothing on the first line of its output", key)
	}
	return secret, nil
}

// ---------------------------------------------------------------------------
// Redaction

// sensitiveKeys are redacted whenever they are set.
var sensitiveKeys = map[string]bool{
	"password":             true,
	"password_hash":        true,
	"password_command":     true,
	"oauth2_token_command": true,
	"client_secret":        true,
}

// redactedAttrs describes struct v as slog attributes named by TOML key,
// skipping zero values and redacting sensitive keys.
func redactedAttrs(v reflect.Value) []slog.Attr {
	var attrs []slog.Attr
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fv := v.Field(i)
		if !f.IsExported() || fv.IsZero() {
			continue
		}
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			attrs = append(attrs, redactedAttrs(fv)...)
			continue
		}
		name := tomlName(f)
		if name == "-" {
			if f.Name != "Path" {
				continue
			}
			name = "path"
		}
		if sensitiveKeys[name] {
			attrs = append(attrs, slog.String(name, redacted))
			continue
		}
		attrs = append(attrs, redactedField(name, fv)...)
	}
	return attrs
}

// redactedField renders one field; slices of tables become name[i] groups.
func redactedField(name string, v reflect.Value) []slog.Attr {
	if v.CanInterface() {
		if tm, ok := v.Interface().(encoding.TextMarshaler); ok {
			b, err := tm.MarshalText()
			if err != nil {
				return nil
			}
			return []slog.Attr{slog.String(name, string(b))}
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return redactedField(name, v.Elem())
	case reflect.Struct:
		return []slog.Attr{{Key: name, Value: slog.GroupValue(redactedAttrs(v)...)}}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			var attrs []slog.Attr
			for i := 0; i < v.Len(); i++ {
				attrs = append(attrs, slog.Attr{Key: name + "[" + strconv.Itoa(i) + "]", Value: slog.GroupValue(redactedAttrs(v.Index(i))...)})
			}
			return attrs
		}
		return []slog.Attr{slog.Any(name, v.Interface())}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		attrs := make([]slog.Attr, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, slog.Any(keyComp(k.String()), v.MapIndex(k).Interface()))
		}
		return []slog.Attr{{Key: name, Value: slog.GroupValue(attrs...)}}
	}
	if v.CanInterface() {
		return []slog.Attr{slog.Any(name, v.Interface())}
	}
	return nil
}

// flattenAttrs writes attrs as space-separated dotted key=value pairs.
func flattenAttrs(b *strings.Builder, prefix string, attrs []slog.Attr) {
	for _, a := range attrs {
		key := a.Key
		if prefix != "" {
			key = prefix + "." + key
		}
		if a.Value.Kind() == slog.KindGroup {
			flattenAttrs(b, key, a.Value.Group())
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		s := a.Value.String()
		if s == "" || strings.ContainsAny(s, " \t\"=\\") || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' }) {
			s = strconv.Quote(s)
		}
		b.WriteString(key + "=" + s)
	}
}

func redactedString(v any) string {
	var b strings.Builder
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "<nil>"
		}
		rv = rv.Elem()
	}
	flattenAttrs(&b, "", redactedAttrs(rv))
	return "{" + b.String() + "}"
}

func redactedLogValue(v any) slog.Value {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return slog.StringValue("<nil>")
		}
		rv = rv.Elem()
	}
	return slog.GroupValue(redactedAttrs(rv)...)
}

// String describes the config as dotted key=value pairs, secrets redacted.
func (c Config) String() string { return redactedString(c) }

// GoString is String, so that %#v cannot print secrets either.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with secrets redacted.
func (c Config) LogValue() slog.Value { return redactedLogValue(c) }

// String implements fmt.Stringer with secrets redacted.
func (u UpstreamConfig) String() string { return redactedString(u) }

// GoString implements fmt.GoStringer with secrets redacted.
func (u UpstreamConfig) GoString() string { return u.String() }

// LogValue implements slog.LogValuer with secrets redacted.
func (u UpstreamConfig) LogValue() slog.Value { return redactedLogValue(u) }

// String implements fmt.Stringer with secrets redacted.
func (p POP3Config) String() string { return redactedString(p) }

// GoString implements fmt.GoStringer with secrets redacted.
func (p POP3Config) GoString() string { return p.String() }

// LogValue implements slog.LogValuer with secrets redacted.
func (p POP3Config) LogValue() slog.Value { return redactedLogValue(p) }

// String implements fmt.Stringer with the password hash redacted.
func (u UserConfig) String() string { return redactedString(u) }

// GoString implements fmt.GoStringer with the password hash redacted.
func (u UserConfig) GoString() string { return u.String() }

// LogValue implements slog.LogValuer with the password hash redacted.
func (u UserConfig) LogValue() slog.Value { return redactedLogValue(u) }

// String says how the secret is given without revealing it.
func (s Secret) String() string { return redactedString(s) }

// GoString implements fmt.GoStringer without revealing the secret.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without revealing the secret.
func (s Secret) LogValue() slog.Value { return redactedLogValue(s) }
