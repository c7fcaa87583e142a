package control

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CACertType is the media type of CACertificate's PEM: what browsers,
// Android and Windows take for a CA certificate to install.
const CACertType = "application/x-x509-ca-cert"

// InfoFile is the control endpoint's address and token, in the data dir.
const InfoFile = "control.json"

// Info is what InfoFile holds.
type Info struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// ReadInfo reads data_dir/control.json.
func ReadInfo(dataDir string) (*Info, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if err != nil {
		return nil, err
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil || info.Addr == "" || info.Token == "" {
		return nil, fmt.Errorf("%s: not a control file", filepath.Join(dataDir, InfoFile))
	}
	return &info, nil
}

// Server serves a Service on the control endpoint.
type Server struct {
	svc  *Service
	ln   net.Listener
	info Info
	path string
	srv  *http.Server
	once sync.Once
	// streams ends the event streams at Close: they never go idle, so
	// a graceful shutdown would wait for them in vain.
	streams     context.Context
	stopStreams context.CancelFunc
}

// IsLoopbackHost reports whether host (a name or address, brackets
// allowed) names this machine only: localhost, *.localhost, 127.0.0.0/8,
// ::1.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// Listen opens the control endpoint on addr (loopback only; "" means
// 127.0.0.1:0), writes data_dir/control.json (mode 0600) and serves svc
// until Close.
func Listen(svc *Service, dataDir, addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("[listen] control: %w", err)
	}
	if !IsLoopbackHost(host) {
		return nil, fmt.Errorf("[listen] control: %q must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control endpoint: %w", err)
	}
	var tok [16]byte
	rand.Read(tok[:])
	s := &Server{svc: svc, ln: ln, info: Info{Addr: ln.Addr().String(), Token: hex.EncodeToString(tok[:]), PID: os.Getpid()},
		path: filepath.Join(dataDir, InfoFile)}
	s.streams, s.stopStreams = context.WithCancel(context.Background())
	data, _ := json.Marshal(s.info)
	if err := writeFileAtomic(s.path, data); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control endpoint: %w", err)
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	svc.SetAddrs(s.info.Addr, svc.consoleAddrNow(), svc.consoleURLNow())
	go s.srv.Serve(ln)
	return s, nil
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() string { return s.info.Addr }

// Client returns a client of this endpoint (the console uses one, so it
// goes through the same door as the CLI).
func (s *Server) Client() *Client { return NewClient(s.info.Addr, s.info.Token) }

// Close stops serving and removes control.json (if it is still ours).
func (s *Server) Close() error {
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if s.stopStreams != nil {
			s.stopStreams()
		}
		s.srv.Shutdown(ctx)
		if info, err := ReadInfo(filepath.Dir(s.path)); err == nil && info.Token == s.info.Token {
			os.Remove(s.path)
		}
	})
	return nil
}

// Handler is the endpoint's HTTP handler (bearer token required).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	api := s.svc
	Routes(mux, "", api)
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"pid": s.info.PID, "version": api.opts.Version})
	})
	mux.HandleFunc("GET /status", get(api.Status))
	mux.HandleFunc("POST /index", get(api.Index))
	mux.HandleFunc("POST /fetch", func(w http.ResponseWriter, r *http.Request) {
		rep, err := api.Fetch(r.Context(), r.URL.Query().Get("account"))
		reply(w, rep, err)
	})
	mux.HandleFunc("POST /migrate", func(w http.ResponseWriter, r *http.Request) {
		var req MigrateRequest
		if !decode(w, r, &req) {
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		send := ndjson(w)
		if err := api.Migrate(r.Context(), req, send); err != nil {
			send(MigrateEvent{Error: err.Error(), Code: CodeOf(err)})
		}
	})
	mux.HandleFunc("POST /verify", post(api.Verify))
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		if s.streams != nil {
			defer context.AfterFunc(s.streams, cancel)()
		}
		ch, err := api.Events(ctx)
		if err != nil {
			writeError(w, err)
			return
		}
		ServeSSE(w, r.WithContext(ctx), ch)
	})
	mux.HandleFunc("GET /verify/report.csv", func(w http.ResponseWriter, r *http.Request) {
		var buf strings.Builder
		if err := api.VerifyCSV(r.Context(), &buf); err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		io.WriteString(w, buf.String())
	})
	mux.HandleFunc("GET /devices/mobileconfig", func(w http.ResponseWriter, r *http.Request) {
		b, err := api.MobileConfig(r.Context(), r.URL.Query().Get("host"))
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b)
	})
	mux.HandleFunc("GET /devices/ca.pem", func(w http.ResponseWriter, r *http.Request) {
		b, err := api.CACertificate(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", CACertType)
		w.Write(b)
	})
	mux.HandleFunc("POST /console-url", get(api.ConsoleURL))

	want := []byte("Bearer " + s.info.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !IsLoopbackHost(host) {
			writeError(w, &Error{Code: CodeUnauthorized, Message: "the control endpoint answers loopback names only", Status: 403})
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			writeError(w, &Error{Code: CodeUnauthorized, Message: "unauthorized", Status: 401})
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// Routes registers the JSON calls the console and the command line share
// under prefix ("" on the control endpoint, "/api" in the console), each
// one API method; the caller wraps mux with its own access check.
func Routes(mux *http.ServeMux, prefix string, api API) {
	mux.HandleFunc("GET "+prefix+"/dashboard", get(api.Dashboard))
	mux.HandleFunc("POST "+prefix+"/plan", post(api.Plan))
	mux.HandleFunc("GET "+prefix+"/migration", get(api.Migration))
	mux.HandleFunc("POST "+prefix+"/migration/start", post(api.StartMigration))
	mux.HandleFunc("POST "+prefix+"/migration/pause", get(api.PauseMigration))
	mux.HandleFunc("POST "+prefix+"/migration/resume", get(api.ResumeMigration))
	mux.HandleFunc("POST "+prefix+"/verify/start", post(api.StartVerify))
	mux.HandleFunc("GET "+prefix+"/verify/state", get(api.VerifyState))
	mux.HandleFunc("GET "+prefix+"/settings", get(api.Settings))
	mux.HandleFunc("POST "+prefix+"/settings", post(api.SaveSettings))
	mux.HandleFunc("GET "+prefix+"/stores", get(api.FindStores))
	mux.HandleFunc("POST "+prefix+"/stores/scan", post(api.ScanStore))
	mux.HandleFunc("GET "+prefix+"/browse", func(w http.ResponseWriter, r *http.Request) {
		l, err := api.Browse(r.Context(), r.URL.Query().Get("dir"))
		reply(w, l, err)
	})
	mux.HandleFunc("POST "+prefix+"/upstream/test", post(api.TestUpstream))
	mux.HandleFunc("POST "+prefix+"/device-password", post(api.SetDevicePassword))
	mux.HandleFunc("GET "+prefix+"/devices", get(api.Devices))
	mux.HandleFunc("POST "+prefix+"/devices/account", post(api.SetDeviceAccount))
	mux.HandleFunc("GET "+prefix+"/system", get(api.System))
	mux.HandleFunc("POST "+prefix+"/system", post(api.SetSystem))
	mux.HandleFunc("GET "+prefix+"/system/uninstall", get(api.UninstallPlan))
	mux.HandleFunc("GET "+prefix+"/system/log", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("lines"))
		l, err := api.Log(r.Context(), n)
		reply(w, l, err)
	})
	mux.HandleFunc("POST "+prefix+"/pop3/test", post(api.TestPOP))
}

// get adapts a method without a request body.
func get[R any](fn func(context.Context) (R, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r.Context())
		reply(w, v, err)
	}
}

// post adapts a method taking a JSON request body.
func post[Q, R any](fn func(context.Context, Q) (R, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var q Q
		if !decode(w, r, &q) {
			return
		}
		v, err := fn(r.Context(), q)
		reply(w, v, err)
	}
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, &Error{Code: CodeBadRequest, Message: "bad request: " + err.Error(), Status: 400})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, v)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// WriteError answers err as JSON (an Error) with its HTTP status.
func WriteError(w http.ResponseWriter, err error) { writeError(w, err) }

func writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(e)
}

// ndjson writes one value per line and flushes it.
func ndjson(w http.ResponseWriter) func(MigrateEvent) {
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex
	return func(ev MigrateEvent) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(ev)
		if fl != nil {
			fl.Flush()
		}
	}
}

// ServeSSE streams events as Server-Sent Events until the channel closes
// or the client goes away. A comment line every 25 s keeps proxies and
// idle-connection timers from closing the stream.
func ServeSSE(w http.ResponseWriter, r *http.Request, ch <-chan Event) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errors.New("streaming is not supported"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": popbridge events\n\n")
	fl.Flush()
	keep := time.NewTicker(25 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			io.WriteString(w, ": keep-alive\n\n")
			fl.Flush()
		case ev, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b)
			fl.Flush()
		}
	}
}

// consoleAddrNow and consoleURLNow return what SetAddrs recorded.
func (s *Service) consoleAddrNow() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consoleAddr
}

func (s *Service) consoleURLNow() func() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consoleURL
}
