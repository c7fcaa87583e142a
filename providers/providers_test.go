package providers

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestForAddress(t *testing.T) {
	tests := []struct {
		addr, want string // want "" = no preset
	}{
		{"taro@gmail.com", "gmail"},
		{"Taro@GoogleMail.COM", "gmail"},
		{"gmail.com", "gmail"},
		{" taro@gmail.com. ", "gmail"},
		{"taro@outlook.jp", "microsoft"},
		{"taro@hotmail.co.jp", "microsoft"},
		{"taro@live.jp", "microsoft"},
		{"taro@hotmail.com", "microsoft"},
		{"taro@contoso.onmicrosoft.com", "microsoft"},
		{"taro@icloud.com", "icloud"},
		{"taro@me.com", "icloud"},
		{"taro@mac.com", "icloud"},
		{"taro@yahoo.co.jp", "yahoo-jp"},
		{"taro@ybb.ne.jp", "ybb"},
		{"taro@docomo.ne.jp", "docomo"},
		{"taro@ezweb.ne.jp", "au"},
		{"taro@au.com", "au"},
		{"taro@ac.auone-net.jp", "auone-net"},
		{"taro@i.softbank.jp", "softbank"},
		{"taro@ab.ocn.ne.jp", "ocn"},
		{"taro@ocn.ne.jp", "ocn"},
		{"taro@biglobe.ne.jp", "biglobe"},
		{"taro@xx.so-net.ne.jp", "so-net"},
		{"taro@nifty.com", "nifty"},
		{"info@example.xsrv.jp", "xserver"},
		{"info@example.sakura.ne.jp", "sakura"},
		// Near misses are not matches.
		{"taro@evilgmail.com", ""},
		{"taro@gmail.com.evil.example", ""},
		{"taro@softbank.ne.jp", ""},
		{"taro@example.com", ""},
		{"taro@", ""},
		{"", ""},
		{"@", ""},
	}
	for _, tt := range tests {
		p, ok := ForAddress(tt.addr)
		if ok != (tt.want != "") || p.ID != tt.want {
			t.Errorf("ForAddress(%q) = %q, %v; want %q", tt.addr, p.ID, ok, tt.want)
		}
	}
}

func TestPresetSettings(t *testing.T) {
	// The settings users depend on, exactly.
	tests := []struct {
		id                               string
		imap                             string
		imapPort                         int
		pop                              string
		popPort                          int
		smtp                             string
		smtpPort                         int
		smtpTLS, oauth2, username, templ string
		appPassword                      bool
	}{
		{"gmail", "imap.gmail.com", 993, "pop.gmail.com", 995, "smtp.gmail.com", 465, TLSImplicit, OAuth2Google, UsernameEmail, "", true},
		{"microsoft", "outlook.office365.com", 993, "outlook.office365.com", 995, "smtp-mail.outlook.com", 587, TLSStartTLS, OAuth2Microsoft, UsernameEmail, "", false},
		{"icloud", "imap.mail.me.com", 993, "", 0, "smtp.mail.me.com", 587, TLSStartTLS, "", UsernameLocal, "", true},
		{"yahoo-jp", "imap.mail.yahoo.co.jp", 993, "pop.mail.yahoo.co.jp", 995, "smtp.mail.yahoo.co.jp", 465, TLSImplicit, "", UsernameID, "", false},
		{"docomo", "imap.spmode.ne.jp", 993, "", 0, "smtp.spmode.ne.jp", 465, TLSImplicit, "", UsernameID, "", true},
		{"ocn", "imap.ocn.ne.jp", 993, "pop.ocn.ne.jp", 995, "smtp.ocn.ne.jp", 465, TLSImplicit, "", UsernameEmail, "", false},
		{"biglobe", "mail.biglobe.ne.jp", 993, "mail.biglobe.ne.jp", 995, "mail.biglobe.ne.jp", 465, TLSImplicit, "", UsernameEmail, "", false},
		{"nifty", "imap.nifty.com", 993, "pop.nifty.com", 995, "smtp.nifty.com", 465, TLSImplicit, "", UsernameEmail, "", false},
		{"xserver", "", 993, "", 995, "", 465, TLSImplicit, "", UsernameEmail, "sv{server}.xserver.jp", false},
		{"sakura", "", 993, "", 995, "", 587, TLSStartTLS, "", UsernameEmail, "{account}.sakura.ne.jp", false},
		{"conoha", "", 993, "", 995, "", 465, TLSImplicit, "", UsernameEmail, "mail{server}.conoha.ne.jp", false},
		{"lolipop", "imap.lolipop.jp", 993, "pop.lolipop.jp", 995, "smtp.lolipop.jp", 465, TLSImplicit, "", UsernameEmail, "", false},
	}
	for _, tt := range tests {
		p, ok := ByID(tt.id)
		if !ok {
			t.Errorf("no preset %q", tt.id)
			continue
		}
		got := []any{p.IMAPHost, p.IMAPPort, p.POPHost, p.POPPort, p.SMTPHost, p.SMTPPort, p.SMTPTLS, p.OAuth2, p.Username, p.Template, p.AppPassword}
		want := []any{tt.imap, tt.imapPort, tt.pop, tt.popPort, tt.smtp, tt.smtpPort, tt.smtpTLS, tt.oauth2, tt.username, tt.templ, tt.appPassword}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: field %d = %v, want %v", tt.id, i, got[i], want[i])
			}
		}
	}
	if _, ok := ByID("nope"); ok {
		t.Error("ByID found a preset that does not exist")
	}
}

// TestPresetsConsistent holds every preset to the package's rules: both
// languages for every text, sane ports and TLS modes, one preset per
// domain.
func TestPresetsConsistent(t *testing.T) {
	all := All()
	if len(all) < 17 {
		t.Errorf("%d presets", len(all))
	}
	ids := map[string]bool{}
	domains := map[string]string{}
	bilingual := func(id, what string, m map[string]string, required bool) {
		if m == nil && !required {
			return
		}
		if len(m) != 2 || strings.TrimSpace(m["ja"]) == "" || strings.TrimSpace(m["en"]) == "" {
			t.Errorf("%s: %s is not in Japanese and English: %q", id, what, m)
		}
	}
	for _, p := range all {
		if p.ID == "" || ids[p.ID] {
			t.Errorf("preset ID %q empty or twice", p.ID)
		}
		ids[p.ID] = true
		bilingual(p.ID, "Name", p.Name, true)
		bilingual(p.ID, "Help", p.Help, false)
		bilingual(p.ID, "UsernameHint", p.UsernameHint, p.Username == UsernameID || p.Username == UsernameLocal)
		bilingual(p.ID, "AppPasswordHelp", p.AppPasswordHelp, p.AppPassword)
		bilingual(p.ID, "TemplateHint", p.TemplateHint, p.Template != "")
		for _, d := range p.Domains {
			if other, dup := domains[d]; dup {
				t.Errorf("domain %s in %s and %s", d, other, p.ID)
			}
			domains[d] = p.ID
			if d != strings.ToLower(d) || !validHost(d) {
				t.Errorf("%s: domain %q", p.ID, d)
			}
		}
		switch p.Username {
		case UsernameEmail, UsernameLocal, UsernameID:
		default:
			t.Errorf("%s: Username %q", p.ID, p.Username)
		}
		switch p.OAuth2 {
		case "", OAuth2Google, OAuth2Microsoft:
		default:
			t.Errorf("%s: OAuth2 %q", p.ID, p.OAuth2)
		}
		hasIMAP := p.IMAPHost != "" || (p.Template != "" && p.IMAPPort != 0)
		hasPOP := p.POPHost != "" || (p.Template != "" && p.POPPort != 0)
		if !hasIMAP && !hasPOP {
			t.Errorf("%s: neither IMAP nor POP", p.ID)
		}
		type srv struct {
			name, host string
			port       int
			tls        string
			present    bool
		}
		for _, s := range []srv{
			{"IMAP", p.IMAPHost, p.IMAPPort, p.IMAPTLS, hasIMAP},
			{"POP", p.POPHost, p.POPPort, p.POPTLS, hasPOP},
			{"SMTP", p.SMTPHost, p.SMTPPort, p.SMTPTLS, p.SMTPHost != "" || p.Template != ""},
		} {
			if !s.present {
				if s.port != 0 || s.tls != "" {
					t.Errorf("%s: %s port/TLS without a host", p.ID, s.name)
				}
				continue
			}
			if s.host != "" && !validHost(s.host) {
				t.Errorf("%s: %s host %q", p.ID, s.name, s.host)
			}
			if s.port <= 0 || s.port > 65535 {
				t.Errorf("%s: %s port %d", p.ID, s.name, s.port)
			}
			// Passwords never cross the network in clear.
			if s.tls != TLSImplicit && s.tls != TLSStartTLS {
				t.Errorf("%s: %s TLS %q", p.ID, s.name, s.tls)
			}
		}
		if p.Template != "" {
			if p.IMAPHost != "" || p.POPHost != "" || p.SMTPHost != "" || len(p.TemplateFields) == 0 {
				t.Errorf("%s: template preset with fixed hosts or no fields", p.ID)
			}
			for _, f := range p.TemplateFields {
				if !strings.Contains(p.Template, "{"+f+"}") || p.fieldRE[f] == nil {
					t.Errorf("%s: field %s not in template or without a check", p.ID, f)
				}
			}
		} else if len(p.TemplateFields) != 0 || p.TemplateHint != nil {
			t.Errorf("%s: template fields without a template", p.ID)
		}
	}
	// All returns copies: changing one does not change the table.
	all[0].Name["en"] = "changed"
	all[0].Domains[0] = "changed.example"
	if p, _ := ByID(all[0].ID); p.Name["en"] == "changed" || p.Domains[0] == "changed.example" {
		t.Error("All exposes the preset table")
	}
}

func TestFill(t *testing.T) {
	tests := []struct {
		id     string
		values map[string]string
		want   string // "" = error
	}{
		{"xserver", map[string]string{"server": "12345"}, "sv12345.xserver.jp"},
		{"xserver", map[string]string{"server": " 8001 "}, "sv8001.xserver.jp"},
		{"xserver", map[string]string{"server": "sv12345"}, "sv12345.xserver.jp"},
		{"xserver", map[string]string{"server": "SV12345.XSERVER.JP"}, "sv12345.xserver.jp"},
		{"xserver", map[string]string{"server": "１２３"}, ""},
		{"xserver", map[string]string{"server": "12a"}, ""},
		{"xserver", map[string]string{"server": "1.evil.example"}, ""},
		{"xserver", map[string]string{"server": ""}, ""},
		{"xserver", nil, ""},
		{"xserver", map[string]string{"server": "1234567"}, ""},
		{"sakura", map[string]string{"account": "example"}, "example.sakura.ne.jp"},
		{"sakura", map[string]string{"account": "Example-Shop"}, "example-shop.sakura.ne.jp"},
		{"sakura", map[string]string{"account": "example.sakura.ne.jp"}, "example.sakura.ne.jp"},
		{"sakura", map[string]string{"account": "ex"}, ""},
		{"sakura", map[string]string{"account": "-example"}, ""},
		{"sakura", map[string]string{"account": "exa mple"}, ""},
		{"sakura", map[string]string{"account": "a/../b"}, ""},
		{"sakura", map[string]string{"account": "example.com"}, ""},
		{"conoha", map[string]string{"server": "22"}, "mail22.conoha.ne.jp"},
		{"conoha", map[string]string{"server": "mail22"}, "mail22.conoha.ne.jp"},
		{"conoha", map[string]string{"server": "mail22.conoha.ne.jp"}, "mail22.conoha.ne.jp"},
		{"conoha", map[string]string{"server": "mail"}, ""},
		{"gmail", nil, "imap.gmail.com"},
		{"lolipop", map[string]string{"x": "y"}, "imap.lolipop.jp"},
	}
	for _, tt := range tests {
		p, _ := ByID(tt.id)
		got, err := p.Fill(tt.values)
		if tt.want == "" {
			var fe *FieldError
			if err == nil || !errors.As(err, &fe) {
				t.Errorf("%s.Fill(%q) = %q, %v; want a FieldError", tt.id, tt.values, got, err)
				continue
			}
			if fe.Message["ja"] == "" || fe.Message["en"] == "" || !strings.Contains(fe.Message["ja"], p.TemplateHint["ja"]) {
				t.Errorf("%s.Fill(%q): message %q", tt.id, tt.values, fe.Message)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s.Fill(%q) = %q, %v; want %q", tt.id, tt.values, got, err, tt.want)
		}
	}
}

func TestResolveAndSuggest(t *testing.T) {
	p, ok := ForAddress("info@example.sakura.ne.jp")
	if !ok {
		t.Fatal("no preset")
	}
	vals := p.Suggest("info@example.sakura.ne.jp")
	if vals["account"] != "example" || len(vals) != 1 {
		t.Fatalf("Suggest = %v", vals)
	}
	r, err := p.Resolve(vals)
	if err != nil {
		t.Fatal(err)
	}
	if r.IMAPHost != "example.sakura.ne.jp" || r.POPHost != r.IMAPHost || r.SMTPHost != r.IMAPHost || r.Template != "" || r.IMAPPort != 993 {
		t.Errorf("Resolve = %+v", r)
	}
	if _, err := p.Resolve(map[string]string{"account": "!"}); err == nil {
		t.Error("Resolve accepted a bad value")
	}
	if v := p.Suggest("info@example.com"); v != nil {
		t.Errorf("Suggest for a foreign domain = %v", v)
	}
	x, _ := ByID("xserver")
	if v := x.Suggest("info@example.xsrv.jp"); v != nil {
		t.Errorf("Xserver Suggest = %v (the initial domain does not name the server)", v)
	}
	g, _ := ByID("gmail")
	if r, err := g.Resolve(nil); err != nil || r.IMAPHost != "imap.gmail.com" {
		t.Errorf("Resolve without a template = %+v, %v", r, err)
	}
	if g.Suggest("a@gmail.com") != nil {
		t.Error("Suggest without a template")
	}
}

func TestLoginName(t *testing.T) {
	for _, tt := range []struct{ id, email, want string }{
		{"gmail", "taro@gmail.com", "taro@gmail.com"},
		{"icloud", "taro@icloud.com", "taro"},
		{"docomo", "taro@docomo.ne.jp", ""},
	} {
		p, _ := ByID(tt.id)
		if got := p.LoginName(tt.email); got != tt.want {
			t.Errorf("%s.LoginName(%q) = %q, want %q", tt.id, tt.email, got, tt.want)
		}
	}
}

func FuzzFill(f *testing.F) {
	f.Add("xserver", "12345")
	f.Add("sakura", "example.sakura.ne.jp")
	f.Add("conoha", "mail22")
	f.Fuzz(func(t *testing.T, id, value string) {
		for _, p := range All() {
			if p.Template == "" {
				continue
			}
			vals := map[string]string{}
			for _, fld := range p.TemplateFields {
				vals[fld] = value
			}
			host, err := p.Fill(vals)
			if err != nil {
				continue
			}
			// Whatever comes out is one host name of the provider's.
			if !validHost(host) || net.ParseIP(host) != nil || strings.ContainsAny(host, "/:@ {}") {
				t.Fatalf("%s.Fill(%q) = %q", p.ID, value, host)
			}
			if p.ID == "xserver" && !strings.HasSuffix(host, ".xserver.jp") ||
				p.ID == "sakura" && strings.Count(host, ".") != 3 ||
				p.ID == "conoha" && !strings.HasPrefix(host, "mail") {
				t.Fatalf("%s.Fill(%q) = %q, not the provider's", p.ID, value, host)
			}
		}
		ForAddress(id + "@" + value)
	})
}
