package control

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/popbridge/popbridge/backend/upstream"
	"github.com/popbridge/popbridge/oauth"
)

// ProblemLog watches the bridge's log for what the user should hear
// about — a device that tried a wrong password, the mail server refusing
// or unreachable, a message the server refused — and keeps the latest of
// each for the dashboard. Wrap the logger's handler with Handler.
type ProblemLog struct {
	mu    sync.Mutex
	items map[string]*Problem // by kind and what it is about
	now   func() time.Time
}

// maxProblems bounds what is kept (the oldest go first).
const maxProblems = 50

// NewProblemLog returns an empty ProblemLog.
func NewProblemLog() *ProblemLog { return &ProblemLog{items: map[string]*Problem{}, now: time.Now} }

// Handler returns a slog.Handler that passes every record to next and
// notes the problems among them.
func (p *ProblemLog) Handler(next slog.Handler) slog.Handler {
	return &problemHandler{p: p, next: next}
}

// add records a problem under key (repeats count up).
func (p *ProblemLog) add(key string, pr Problem) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.items[key]; ok {
		old.Count++
		old.At = pr.At
		old.Detail = pr.Detail
		return
	}
	pr.Count = 1
	p.items[key] = &pr
	if len(p.items) > maxProblems {
		var oldest string
		for k, v := range p.items {
			if oldest == "" || v.At.Before(p.items[oldest].At) {
				oldest = k
			}
		}
		delete(p.items, oldest)
	}
}

// Clear forgets the problems of kind (a sign-in renewed: "sign-in").
func (p *ProblemLog) Clear(kind string) { p.clear(kind) }

// clear forgets the problems of kind.
func (p *ProblemLog) clear(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.items {
		if v.Kind == kind {
			delete(p.items, k)
		}
	}
}

func (p *ProblemLog) list() []Problem {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Problem, 0, len(p.items))
	for _, v := range p.items {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

type problemHandler struct {
	p     *ProblemLog
	next  slog.Handler
	attrs []slog.Attr
}

func (h *problemHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *problemHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.note(r)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *problemHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &problemHandler{p: h.p, next: h.next.WithAttrs(attrs), attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...)}
}

func (h *problemHandler) WithGroup(name string) slog.Handler {
	// Grouped attributes are not looked at; the record still is.
	return &problemHandler{p: h.p, next: h.next.WithGroup(name), attrs: h.attrs}
}

// note looks at a warning or error.
func (h *problemHandler) note(r slog.Record) {
	attrs := map[string]slog.Value{}
	for _, a := range h.attrs {
		attrs[a.Key] = a.Value.Resolve()
	}
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Resolve()
		return true
	})
	str := func(k string) string {
		if v, ok := attrs[k]; ok {
			return v.String()
		}
		return ""
	}
	at := r.Time
	if at.IsZero() {
		at = h.p.now()
	}
	switch r.Message {
	case "imap authentication failed":
		// One entry per user and address the attempts come from.
		ip := str("remote")
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		user := str("user")
		h.p.add("login-refused\x00"+user+"\x00"+ip, Problem{Kind: "login-refused", At: at,
			Params: map[string]string{"user": user, "remote": ip},
			Detail: "a device tried to log in to the bridge as " + user + " from " + ip + " with a wrong password"})
		return
	case "upload refused by the server", "migrate: the server refused a message; it stays local":
		mb := str("mailbox")
		detail := r.Message
		if v, ok := attrs["err"]; ok {
			detail = v.String()
		}
		h.p.add("migrate\x00"+mb, Problem{Kind: "migrate", At: at, Params: map[string]string{"mailbox": mb}, Detail: detail})
		return
	}
	if v, ok := attrs["err"]; ok && v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok {
			var ce *oauth.ConsentError
			if errors.As(err, &ce) {
				// The provider withdrew the sign-in (or there is none
				// yet): the user must sign in again, in plain words.
				h.p.add("sign-in\x00"+ce.Provider+"\x00"+ce.Account, Problem{Kind: "sign-in", At: at,
					Params: map[string]string{"provider": ce.Provider, "account": ce.Account, "reason": ce.Reason},
					Texts:  ConsentTexts(ce), Detail: ce.Error()})
				return
			}
			var ue *upstream.Error
			if errors.As(err, &ue) && ue.Kind != upstream.KindDisconnected {
				host := net.JoinHostPort(ue.Host, strconv.Itoa(ue.Port))
				h.p.add("upstream\x00"+host+"\x00"+ue.Kind.String(), Problem{Kind: "upstream", At: at,
					Params: map[string]string{"host": host, "reason": ue.Kind.String()}, Detail: err.Error()})
			}
		}
	}
}
