package console

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// pageNames are the console's pages (templates/<name>.html each).
var pageNames = []string{"dashboard", "setup", "move", "devices", "settings", "nosession", "login"}

// navItem is one entry of the page header.
type navItem struct {
	Path    string
	Key     string
	Current bool
}

var nav = []navItem{
	{"/", "nav.dashboard", false},
	{"/setup", "nav.setup", false},
	{"/move", "nav.move", false},
	{"/devices", "nav.devices", false},
	{"/settings", "nav.settings", false},
}

// pageData is what a page template sees.
type pageData struct {
	Lang    string
	Page    string
	CSRF    string
	Version string
	Path    string
	I18N    string // the catalog of Lang, as JSON, for console.js
	Bare    bool   // no navigation (login, no session)
	Nav     []navItem
	Langs   []string
	cat     catalog
}

// T is a text of the page's language with {name} placeholders filled
// from name, value pairs.
func (d *pageData) T(key string, args ...string) string { return d.cat.text(d.Lang, key, args...) }

// In is a text in another language than the page's.
func (d *pageData) In(lang, key string) string { return d.cat.text(lang, key) }

// LangName names a language in itself.
func (d *pageData) LangName(l string) string { return d.cat.text(l, "lang.name") }

// page serves one of the console's pages.
func (s *Server) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if name == "dashboard" {
			// Until setup is done the overview has nothing to show.
			if set, err := s.api.Settings(r.Context()); err == nil && !set.Configured {
				http.Redirect(w, r, "/setup", http.StatusSeeOther)
				return
			}
		}
		csrf := ""
		if sess := sessionOf(r); sess != nil {
			csrf = sess.csrf
		}
		s.render(w, r, name, http.StatusOK, pickLang(r), csrf)
	}
}

// render writes a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, status int, lang, csrf string) {
	i18n, _ := json.Marshal(s.cat[lang])
	d := &pageData{Lang: lang, Page: name, CSRF: csrf, Version: s.opts.Version, Path: r.URL.Path, I18N: string(i18n),
		Bare: name == "nosession" || name == "login", Langs: languages, cat: s.cat}
	for _, n := range nav {
		n.Current = n.Path == r.URL.Path
		d.Nav = append(d.Nav, n)
	}
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, d); err != nil {
		s.log.Error("console page", "page", name, "err", err)
		http.Error(w, "console page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
