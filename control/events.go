package control

import (
	"context"
	"sync"
	"time"

	"github.com/popbridge/popbridge/backend"
)

// hub fans live updates out to subscribers (the console's open pages, a
// CLI watching). While it has none, nothing runs: the watcher goroutine
// that turns backend changes into events exists only between the first
// subscribe and the last unsubscribe.
type hub struct {
	s    *Service
	mu   sync.Mutex
	subs map[chan Event]struct{}
	stop context.CancelFunc // the watcher, while there are subscribers
}

// debounce collects a burst of changes (an index run, a migration batch)
// into one event.
const debounce = 300 * time.Millisecond

func newHub(s *Service) *hub { return &hub{s: s, subs: map[chan Event]struct{}{}} }

// subscribe returns a channel of events that is closed when ctx ends.
func (h *hub) subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	if len(h.subs) == 1 {
		wctx, cancel := context.WithCancel(context.Background())
		h.stop = cancel
		// What changes from now on is seen: the watcher starts from this
		// channel, taken before subscribe returns.
		var first <-chan struct{}
		var acct *backend.Account
		if rt := h.s.current(); rt != nil && rt.Account != nil {
			acct, first = rt.Account, rt.Account.Changes()
		}
		go h.watch(wctx, acct, first)
	}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.mu.Lock()
		delete(h.subs, ch)
		if len(h.subs) == 0 && h.stop != nil {
			h.stop()
			h.stop = nil
		}
		close(ch)
		h.mu.Unlock()
	}()
	return ch
}

// Listeners returns how many live-update listeners (open console pages,
// through the console's event stream) are connected. While it is 0
// nothing watches the bridge for them.
func (s *Service) Listeners() int { return s.hub.subscribers() }

// subscribers returns how many subscribers there are.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// watching reports whether the watcher runs.
func (h *hub) watching() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stop != nil
}

// publish sends ev to every subscriber without blocking: a subscriber
// whose buffer is full misses it (it has events to read, and each makes it
// fetch the latest state).
func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// watch turns backend changes into dashboard events until ctx ends.
func (h *hub) watch(ctx context.Context, firstAcct *backend.Account, first <-chan struct{}) {
	for {
		var changes <-chan struct{}
		if rt := h.s.current(); rt != nil && rt.Account != nil {
			changes = rt.Account.Changes()
			if rt.Account == firstAcct && first != nil {
				changes = first // changes since subscribe
			}
		}
		first = nil
		h.s.mu.Lock()
		rtChanged := h.s.rtChanged
		h.s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-rtChanged:
			continue
		case <-changes:
			t := time.NewTimer(debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			h.publish(Event{Type: "dashboard"})
		}
	}
}
