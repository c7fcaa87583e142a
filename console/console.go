package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/popbridge/popbridge/control"
)

//go:embed assets
var assets embed.FS

// Options configure a Server. API is required; zero values of the others
// get the documented defaults.
type Options struct {
	// API is how the console reads and changes popbridge.
	API control.API
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Version is shown in the footer.
	Version string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is the console.
type Server struct {
	opts  Options
	log   *slog.Logger
	api   control.API
	cat   catalog
	gate  *gate
	pages map[string]*template.Template

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	port string
	// streams ends the pages' event streams at Close (they never go
	// idle, so a graceful shutdown would wait for them in vain).
	streams     context.Context
	stopStreams context.CancelFunc
}

// New checks opts and prepares the console; Listen starts it.
func New(opts Options) (*Server, error) {
	if opts.API == nil {
		return nil, errors.New("console: Options.API is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cat, err := loadCatalog()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, api: opts.API, cat: cat, gate: newGate(opts.Now), pages: map[string]*template.Template{}}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	for _, p := range pageNames {
		t, err := template.New("layout.html").ParseFS(assets, "assets/templates/layout.html", "assets/templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", p, err)
		}
		s.pages[p] = t
	}
	return s, nil
}

// Listen serves the console on addr, which must be a loopback address
// ("127.0.0.1:0" picks a free port).
func (s *Server) Listen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("console: %q is not host:port", addr)
	}
	if !control.IsLoopbackHost(host) {
		return fmt.Errorf("console: %q is not a loopback address: the console is for this computer only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", addr, err)
	}
	s.Serve(ln)
	return nil
}

// Serve serves the console on ln (which must be on loopback) in the
// background.
func (s *Server) Serve(ln net.Listener) {
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.ln, s.srv, s.port = ln, srv, port
	s.mu.Unlock()
	go srv.Serve(ln)
}

// Addr is where the console listens ("" before Listen).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// LoginURL returns a URL that logs a browser in once, for 15 minutes.
func (s *Server) LoginURL() (string, error) {
	addr := s.Addr()
	if addr == "" {
		return "", errors.New("console: not listening")
	}
	return "http://" + addr + "/login?token=" + s.gate.mint(), nil
}

// Close stops the console.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	s.stopStreams()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

// cookieName is the session cookie's name: per port, since browsers share
// cookies between the ports of a host.
func (s *Server) cookieName(r *http.Request) string {
	port := s.port
	if port == "" {
		if _, p, err := net.SplitHostPort(r.Host); err == nil {
			port = p
		}
	}
	return "popbridge_session_" + port
}

// Handler is the console's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	fileServer := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /login", s.login)
	mux.HandleFunc("GET /{$}", s.page("dashboard"))
	for _, p := range []string{"setup", "move", "devices", "settings"} {
		mux.HandleFunc("GET /"+p, s.page(p))
	}
	mux.HandleFunc("POST /lang", s.setLang)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /devices/popbridge.mobileconfig", s.mobileConfig)
	mux.HandleFunc("GET /devices/"+caFileName, s.caCert)
	mux.HandleFunc("GET /verify-report.csv", s.verifyCSV)
	s.apiRoutes(mux)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		if !hostAllowed(r.Host) {
			http.Error(w, "Host check error: open the console at http://127.0.0.1 or http://localhost (Host ヘッダーが不正です)", http.StatusForbidden)
			return
		}
		if r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/") {
			mux.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		var sess *session
		if c, err := r.Cookie(s.cookieName(r)); err == nil {
			sess = s.gate.lookup(c.Value)
		}
		if sess == nil {
			s.noSession(w, r)
			return
		}
		if !safeMethod(r.Method) && (!sameOrigin(r) || !csrfOK(r, sess)) {
			writeErr(w, &control.Error{Code: "csrf", Message: "this request did not come from the console page (missing or wrong CSRF token); reload the page", Status: http.StatusForbidden})
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)))
	})
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

// login turns a one-time token into a session. The answer is a small page
// that moves on by itself: a navigation started by the console's own page
// carries the SameSite=Strict cookie everywhere, also when the login URL
// was opened from another program.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	lang := pickLang(r)
	sess, ok := s.gate.redeem(r.URL.Query().Get("token"))
	if !ok {
		s.render(w, r, "nosession", http.StatusUnauthorized, lang, "")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r), Value: sess.id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, "login", http.StatusOK, lang, sess.csrf)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if sess := sessionOf(r); sess != nil {
		s.gate.end(sess.id)
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(r), Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.render(w, r, "nosession", http.StatusOK, pickLang(r), "")
}

// noSession answers a request without a session: pages explain how to
// get in, everything else is refused.
func (s *Server) noSession(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") && r.URL.Path != "/events" {
		s.render(w, r, "nosession", http.StatusUnauthorized, pickLang(r), "")
		return
	}
	writeErr(w, &control.Error{Code: control.CodeUnauthorized, Message: "not logged in to the console: run popbridge console", Status: http.StatusUnauthorized})
}

// setLang remembers the language the user picked.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if !validLang(lang) {
		writeErr(w, &control.Error{Code: control.CodeBadRequest, Message: "unknown language", Status: http.StatusBadRequest})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: 400 * 24 * 3600})
	next := r.PostFormValue("next")
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// events relays the control API's live updates to the page.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.streams, cancel)()
	ch, err := s.api.Events(ctx)
	if err != nil {
		writeErr(w, err)
		return
	}
	control.ServeSSE(w, r.WithContext(ctx), ch)
}

// caFileName is the name the CA certificate downloads as: .crt opens
// Windows' and macOS's certificate installers on a double-click, and
// Android and Thunderbird import it (the content is PEM).
const caFileName = "popbridge-ca.crt"

// caCert serves popbridge's CA certificate (never a key: the control API
// has none to give).
func (s *Server) caCert(w http.ResponseWriter, r *http.Request) {
	b, err := s.api.CACertificate(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", control.CACertType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+caFileName+`"`)
	w.Write(b)
}

func (s *Server) mobileConfig(w http.ResponseWriter, r *http.Request) {
	b, err := s.api.MobileConfig(r.Context(), r.URL.Query().Get("host"))
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", mobileConfigType)
	w.Header().Set("Content-Disposition", `attachment; filename="popbridge.mobileconfig"`)
	w.Write(b)
}

func (s *Server) verifyCSV(w http.ResponseWriter, r *http.Request) {
	var buf strings.Builder
	if err := s.api.VerifyCSV(r.Context(), &buf); err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="popbridge-verify-report.csv"`)
	// A byte order mark, so that Excel reads the Japanese in it as UTF-8.
	io.WriteString(w, "\ufeff"+buf.String())
}

// writeErr answers with an API error as JSON.
// writeErr answers err as the control endpoint does (control.WriteError).
func writeErr(w http.ResponseWriter, err error) { control.WriteError(w, err) }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
