// Package providers holds the mail provider presets shipped in the
// binary: from the user's email address, the server settings of the new
// IMAP mailbox and of the old POP account, whether the provider wants an
// app password or OAuth2, and for rental servers whose host depends on the
// contract, a template with the part to fill in.
//
// Implementation notes:
//
//   - Every text a user reads (Name, Help, TemplateHint, AppPasswordHelp,
//     UsernameHint, FieldError messages) exists in Japanese ("ja") and
//     English ("en"); a test holds that line.
//   - Each preset says in a comment what its settings are based on. Where
//     that is weaker than the provider's own documentation the comment
//     says so: "Test connection" in the console is the final check, and a
//     wrong preset only pre-fills fields the user can change.
//   - Domains match exactly or as a parent domain (xx.ocn.ne.jp is OCN),
//     so ISPs that give each customer a subdomain are found.
//   - A template's filled host serves IMAP, POP and SMTP alike (rental
//     servers use one host); the preset's IMAPHost/POPHost/SMTPHost are
//     then empty until Resolve fills them.
package providers

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// TLS modes, as in popbridge.toml.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// OAuth2 provider names.
const (
	OAuth2Google    = "google"
	OAuth2Microsoft = "microsoft"
)

// Username kinds: what the provider wants as the login name.
const (
	UsernameEmail = "email" // the whole address
	UsernameLocal = "local" // the part before '@'
	UsernameID    = "id"    // an ID of the provider's; UsernameHint says which
)

// Preset is one provider's settings.
type Preset struct {
	ID   string
	Name map[string]string // "ja", "en"
	Help map[string]string // what to do at the provider first; may be nil
	// Domains are the address domains the preset is chosen for (also
	// their subdomains). Empty for presets chosen by hand.
	Domains []string

	IMAPHost string
	IMAPPort int
	IMAPTLS  string // implicit|starttls|none
	POPHost  string // "": the provider has no POP
	POPPort  int
	POPTLS   string
	SMTPHost string
	SMTPPort int
	SMTPTLS  string

	// Template is the host with {field} parts to fill in, e.g.
	// "sv{server}.xserver.jp"; "" for fixed hosts.
	Template       string
	TemplateFields []string
	TemplateHint   map[string]string

	// Username says what the login name is (UsernameEmail, UsernameLocal,
	// UsernameID); UsernameHint explains an ID.
	Username     string
	UsernameHint map[string]string

	AppPassword     bool
	AppPasswordHelp map[string]string
	OAuth2          string // "google", "microsoft" or ""; "microsoft" means passwords are refused

	fieldRE map[string]*regexp.Regexp
}

// All returns every preset, in the order the console lists them.
func All() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		out[i] = p.clone()
	}
	return out
}

// ByID returns the preset with id.
func ByID(id string) (Preset, bool) {
	for _, p := range presets {
		if p.ID == id {
			return p.clone(), true
		}
	}
	return Preset{}, false
}

// ForAddress returns the preset for an email address (or a bare domain):
// the one whose domain equals the address's domain or is its parent.
// The longest matching domain wins.
func ForAddress(email string) (Preset, bool) {
	domain := strings.ToLower(strings.TrimSpace(email))
	if i := strings.LastIndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	domain = strings.TrimSuffix(domain, ".")
	if domain == "" {
		return Preset{}, false
	}
	best, bestLen := -1, 0
	for i, p := range presets {
		for _, d := range p.Domains {
			if (domain == d || strings.HasSuffix(domain, "."+d)) && len(d) > bestLen {
				best, bestLen = i, len(d)
			}
		}
	}
	if best < 0 {
		return Preset{}, false
	}
	return presets[best].clone(), true
}

// LoginName returns what p wants as the login name for email: the whole
// address, its local part, or "" when it is an ID the user must enter.
func (p Preset) LoginName(email string) string {
	email = strings.TrimSpace(email)
	switch p.Username {
	case UsernameLocal:
		if i := strings.LastIndexByte(email, '@'); i >= 0 {
			return email[:i]
		}
		return email
	case UsernameID:
		return ""
	default:
		return email
	}
}

// FieldError is a template value that cannot be part of a host name.
type FieldError struct {
	Field   string
	Value   string
	Message map[string]string // "ja", "en"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Message["en"])
}

// Fill returns the host for a template preset with values filled in. A
// value may also be the whole host name as the provider wrote it (the
// user pasted "sv12345.xserver.jp") or start with the template's text
// before the field ("sv12345"). Values are checked against what the
// provider's host names can be, so nothing but a host name comes out.
// For a preset without a template Fill returns IMAPHost.
func (p Preset) Fill(values map[string]string) (host string, err error) {
	if p.Template == "" {
		return p.IMAPHost, nil
	}
	host = p.Template
	for _, f := range p.TemplateFields {
		v := strings.ToLower(strings.TrimSpace(values[f]))
		v = p.extract(f, v)
		if v == "" {
			return "", &FieldError{Field: f, Value: values[f], Message: map[string]string{
				"ja": "入力してください。" + p.TemplateHint["ja"],
				"en": "please fill this in. " + p.TemplateHint["en"],
			}}
		}
		re := p.fieldRE[f]
		if re == nil {
			re = labelRE
		}
		if !re.MatchString(v) || !labelRE.MatchString(v) {
			return "", &FieldError{Field: f, Value: values[f], Message: map[string]string{
				"ja": "この形ではありません。" + p.TemplateHint["ja"],
				"en": "this is not in the expected form. " + p.TemplateHint["en"],
			}}
		}
		host = strings.ReplaceAll(host, "{"+f+"}", v)
	}
	if !validHost(host) {
		return "", &FieldError{Field: strings.Join(p.TemplateFields, ","), Value: host, Message: map[string]string{
			"ja": "サーバー名になりません。" + p.TemplateHint["ja"],
			"en": "this does not make a server name. " + p.TemplateHint["en"],
		}}
	}
	return host, nil
}

// Resolve returns p with a template's host filled in as its IMAP, POP and
// SMTP host (Template cleared); a preset without a template is returned
// as it is.
func (p Preset) Resolve(values map[string]string) (Preset, error) {
	if p.Template == "" {
		return p.clone(), nil
	}
	host, err := p.Fill(values)
	if err != nil {
		return Preset{}, err
	}
	q := p.clone()
	q.IMAPHost, q.POPHost, q.SMTPHost = host, host, host
	q.Template, q.TemplateFields = "", nil
	return q, nil
}

// Suggest proposes template values from the email address, for a rental
// server whose initial domain names the account (info@example.sakura.ne.jp
// gives account "example"); nil when there is nothing to propose.
func (p Preset) Suggest(email string) map[string]string {
	if p.Template == "" || len(p.TemplateFields) != 1 {
		return nil
	}
	domain := strings.ToLower(strings.TrimSpace(email))
	if i := strings.LastIndexByte(domain, '@'); i >= 0 {
		domain = domain[i+1:]
	}
	if v := p.extract(p.TemplateFields[0], domain); v != domain && v != "" {
		return map[string]string{p.TemplateFields[0]: v}
	}
	return nil
}

// extract takes the field's part out of a whole host name or strips the
// template text right before the field; otherwise v is returned.
func (p Preset) extract(field, v string) string {
	if v == "" {
		return ""
	}
	i := strings.Index(p.Template, "{"+field+"}")
	if i < 0 {
		return v
	}
	prefix := p.Template[:i]
	suffix := p.Template[i+len(field)+2:]
	if !strings.Contains(prefix, "{") && !strings.Contains(suffix, "{") {
		if s, ok := strings.CutSuffix(v, suffix); ok && suffix != "" {
			if t, ok := strings.CutPrefix(s, prefix); ok {
				return t
			}
		}
		if prefix != "" && !strings.Contains(prefix, ".") {
			if t, ok := strings.CutPrefix(v, prefix); ok && t != "" {
				return t
			}
		}
	}
	return v
}

func (p Preset) clone() Preset {
	q := p
	q.Domains = slices.Clone(p.Domains)
	q.TemplateFields = slices.Clone(p.TemplateFields)
	q.Name, q.Help = maps.Clone(p.Name), maps.Clone(p.Help)
	q.TemplateHint, q.UsernameHint, q.AppPasswordHelp = maps.Clone(p.TemplateHint), maps.Clone(p.UsernameHint), maps.Clone(p.AppPasswordHelp)
	q.fieldRE = maps.Clone(p.fieldRE)
	return q
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validHost accepts an ASCII DNS host name.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}
