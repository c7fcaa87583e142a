package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/popbridge/popbridge/control"
	"github.com/popbridge/popbridge/devices"
	"github.com/popbridge/popbridge/providers"
)

const mobileConfigType = devices.ContentType

// apiRoutes are the JSON calls of console.js: the control API's shared
// routes under /api (control.Routes), and what is computed here from data
// only (presets, QR codes).
func (s *Server) apiRoutes(mux *http.ServeMux) {
	control.Routes(mux, "/api", s.api)
	mux.HandleFunc("GET /api/presets", s.presets)
	mux.HandleFunc("POST /api/presets/fill", s.presetFill)
	mux.HandleFunc("GET /api/devices/qr.png", s.qr)
}

// presetView is a provider preset in the page's language.
type presetView struct {
	Found           bool              `json:"found"`
	ID              string            `json:"id,omitempty"`
	Name            string            `json:"name,omitempty"`
	Help            string            `json:"help,omitempty"`
	IMAPHost        string            `json:"imap_host,omitempty"`
	IMAPPort        int               `json:"imap_port,omitempty"`
	IMAPTLS         string            `json:"imap_tls,omitempty"`
	POPHost         string            `json:"pop_host,omitempty"`
	POPPort         int               `json:"pop_port,omitempty"`
	POPTLS          string            `json:"pop_tls,omitempty"`
	SMTPHost        string            `json:"smtp_host,omitempty"`
	SMTPPort        int               `json:"smtp_port,omitempty"`
	SMTPTLS         string            `json:"smtp_tls,omitempty"`
	Template        string            `json:"template,omitempty"`
	TemplateFields  []string          `json:"template_fields,omitempty"`
	TemplateHint    string            `json:"template_hint,omitempty"`
	Suggest         map[string]string `json:"suggest,omitempty"`
	Username        string            `json:"username,omitempty"` // the login name for the address; "" when it is an ID
	UsernameHint    string            `json:"username_hint,omitempty"`
	AppPassword     bool              `json:"app_password,omitempty"`
	AppPasswordHelp string            `json:"app_password_help,omitempty"`
	OAuth2          string            `json:"oauth2,omitempty"`
}

func viewOf(p providers.Preset, lang, email string) presetView {
	pick := func(m map[string]string) string {
		if v := m[lang]; v != "" {
			return v
		}
		return m["en"]
	}
	return presetView{Found: true, ID: p.ID, Name: pick(p.Name), Help: pick(p.Help),
		IMAPHost: p.IMAPHost, IMAPPort: p.IMAPPort, IMAPTLS: p.IMAPTLS, POPHost: p.POPHost, POPPort: p.POPPort, POPTLS: p.POPTLS,
		SMTPHost: p.SMTPHost, SMTPPort: p.SMTPPort, SMTPTLS: p.SMTPTLS,
		Template: p.Template, TemplateFields: p.TemplateFields, TemplateHint: pick(p.TemplateHint), Suggest: p.Suggest(email),
		Username: p.LoginName(email), UsernameHint: pick(p.UsernameHint), AppPassword: p.AppPassword, AppPasswordHelp: pick(p.AppPasswordHelp),
		OAuth2: p.OAuth2}
}

// presets finds the preset for ?email=.
func (s *Server) presets(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	p, ok := providers.ForAddress(email)
	if !ok {
		writeJSON(w, presetView{})
		return
	}
	writeJSON(w, viewOf(p, pickLang(r), email))
}

// presetFill fills a rental server's template.
func (s *Server) presetFill(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     string            `json:"id"`
		Email  string            `json:"email"`
		Values map[string]string `json:"values"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeErr(w, &control.Error{Code: control.CodeBadRequest, Message: "bad request", Status: http.StatusBadRequest})
		return
	}
	p, ok := providers.ByID(req.ID)
	if !ok {
		writeErr(w, &control.Error{Code: control.CodeNotFound, Message: "no such provider", Status: http.StatusNotFound})
		return
	}
	lang := pickLang(r)
	q, err := p.Resolve(req.Values)
	if err != nil {
		var fe *providers.FieldError
		msg := err.Error()
		params := map[string]string{}
		if errors.As(err, &fe) {
			msg = fe.Message[lang]
			params["field"] = fe.Field
		}
		writeErr(w, &control.Error{Code: control.CodeBadRequest, Message: msg, Params: params, Status: http.StatusBadRequest})
		return
	}
	writeJSON(w, viewOf(q, lang, req.Email))
}

// qr renders the settings of a listener (kind=settings, plain text a
// phone's camera shows) or Thunderbird's account export (kind=thunderbird)
// as a QR code.
func (s *Server) qr(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := s.api.Devices(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	host := q.Get("host")
	okHost := false
	for _, h := range d.Hosts {
		okHost = okHost || h == host
	}
	var l *control.Listener
	for i := range d.Listeners {
		if d.Listeners[i].Kind == q.Get("listener") {
			l = &d.Listeners[i]
		}
	}
	if !okHost || l == nil {
		writeErr(w, &control.Error{Code: control.CodeNotFound, Message: "no such address or listener", Status: http.StatusNotFound})
		return
	}
	a := devices.Account{Description: "popbridge", Email: d.Account.Email, DisplayName: d.Account.DisplayName, Host: host, Port: l.Port,
		TLS: l.Kind == "imaps", Username: d.User, SMTPHost: d.Account.SMTPHost, SMTPPort: d.Account.SMTPPort, SMTPTLS: d.Account.SMTPTLS,
		SMTPUsername: d.Account.SMTPUsername}
	var text string
	if q.Get("kind") == "thunderbird" {
		if text, err = devices.ThunderbirdQR(a); err != nil {
			writeErr(w, &control.Error{Code: control.CodeInvalid, Message: err.Error(), Status: http.StatusBadRequest})
			return
		}
	} else {
		text = strings.TrimSpace(devices.SettingsText(a, pickLang(r)))
	}
	var png []byte
	for _, size := range []int{264, 396, 528, 792} {
		if png, err = devices.QRPNG(text, size); err == nil {
			break
		}
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(png)
}
