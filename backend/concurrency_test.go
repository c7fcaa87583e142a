package backend

// Ten clients at once on one bridge-owned folder (issue F, item 7): every
// response is checked against a model of the folder that holds under any
// interleaving of the sessions.
//
// What the model rests on:
//   - every message carries a unique token, registered (token → exact
//     bytes) before its APPEND is sent: a body must be exactly the bytes
//     registered for the token it contains, and a token names one UID in
//     every session;
//   - each session keeps the client's sequence-number map (seq → UID, 0
//     where the UID is not known yet), moved only by the untagged EXISTS
//     and EXPUNGE it receives; FETCH by sequence number fills it and must
//     agree with it;
//   - a session only adds or removes its own keyword ($s<i>), so its STOREs
//     commute with everyone else's and the state of its keyword on any
//     message is what its last confirmed STORE said;
//   - only the session that appended a message (pre-filled ones are dealt
//     out) deletes it, with STORE \Deleted + UID EXPUNGE.

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	concFolder   = "Local/Conc"
	concSessions = 10
	concOps      = 150
	concPrefill  = 20
	// concSeedBase is the first session's seed; session i uses base+i.
	// POPBRIDGE_CONC_SEED overrides it to explore other op sequences.
	concSeedBase = 20250710
)

var concTokenRE = regexp.MustCompile(`\r\nX-Conc-Token: ([A-Za-z0-9-]+)\r\n`)

// concFetch is what every FETCH of the test asks for.
var (
	concSec   = &imap.FetchItemBodySection{Peek: true}
	concFetch = &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{concSec}}
)

// TestConcurrentSessionsModel runs ten real, concurrent IMAP sessions
// doing SELECT / FETCH / UID FETCH / STORE / APPEND / STORE \Deleted + UID
// EXPUNGE / NOOP on one Local/… folder and checks every response against
// the model; at the end every session's picture, the bytes, the flags and
// the bridge's Maildir must equal the truth. "restart" has one session log
// out and come back half-way.
func TestConcurrentSessionsModel(t *testing.T) {
	base := int64(concSeedBase)
	if s := os.Getenv("POPBRIDGE_CONC_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("POPBRIDGE_CONC_SEED=%q: %v", s, err)
		}
		base = n
	}
	t.Run("steady", func(t *testing.T) { runConcWorkload(t, base, -1) })
	t.Run("restart", func(t *testing.T) { runConcWorkload(t, base+1000, 3) })
}

func runConcWorkload(t *testing.T, seedBase int64, restarter int) {
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	w := &concWorld{bodies: map[string][]byte{}, tokUID: map[string]imap.UID{}, uidTok: map[imap.UID]string{},
		owner: map[imap.UID]int{}, deleting: map[imap.UID]bool{}, deleted: map[imap.UID]bool{}, mustGo: map[imap.UID]string{}}

	// The folder, pre-filled; each pre-filled message is given to one
	// session, the only one that may delete it.
	setup := e.client(nil)
	if err := setup.Create(concFolder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sessions := make([]*concSession, concSessions)
	for i := range sessions {
		sessions[i] = &concSession{id: i, seed: seedBase + int64(i), w: w, addr: e.addr, kw: imap.Flag(fmt.Sprintf("$s%d", i)),
			own: map[imap.UID]kwState{}, tr: &tracer{}}
		sessions[i].rng = rand.New(rand.NewSource(sessions[i].seed))
		sessions[i].pick = rand.New(rand.NewSource(^sessions[i].seed))
	}
	prng := rand.New(rand.NewSource(seedBase - 1))
	for k := range concPrefill {
		token := fmt.Sprintf("pre-%d", k)
		body := concBody(prng, token)
		if err := w.register(token, body); err != nil {
			t.Fatal(err)
		}
		ad, err := appendMsg(setup, concFolder, body)
		if err != nil {
			t.Fatalf("pre-fill APPEND %d: %v", k, err)
		}
		if ad.UID == 0 || ad.UIDValidity == 0 {
			t.Fatalf("pre-fill APPEND %d: no APPENDUID (%+v)", k, ad)
		}
		if w.uidValidity == 0 {
			w.uidValidity = ad.UIDValidity
		}
		if err := w.bind(token, ad.UID); err != nil {
			t.Fatal(err)
		}
		s := sessions[k%concSessions]
		w.owner[ad.UID] = s.id
		s.mine = append(s.mine, ad.UID)
	}
	if err := setup.Logout().Wait(); err != nil {
		t.Fatal(err)
	}

	// Every session connects and selects before any starts its ops, so
	// that all of them really run at once.
	defer func() {
		for _, s := range sessions {
			if s.c != nil {
				s.c.Close()
			}
		}
	}()
	for _, s := range sessions {
		if err := s.connect(); err != nil {
			t.Fatalf("session %d: %v", s.id, err)
		}
	}
	errs := make([]error, concSessions)
	var wg sync.WaitGroup
	for i, s := range sessions {
		restartAt := -1
		if i == restarter {
			restartAt = concOps / 2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.run(concOps, restartAt)
		}()
	}
	wg.Wait()
	failed := false
	for i, err := range errs {
		if err != nil {
			failed = true
			t.Errorf("session %d (seed %d): %v\n--- its last commands and responses ---\n%s", i, sessions[i].seed, err, sessions[i].tr.tail(80))
		}
	}
	if dir := os.Getenv("POPBRIDGE_CONC_TRACE"); failed && dir != "" {
		// Every session's whole trace, for reading the interleaving.
		for _, s := range sessions {
			p := filepath.Join(dir, fmt.Sprintf("%s-session%d.trace", strings.ReplaceAll(t.Name(), "/", "-"), s.id))
			if err := os.WriteFile(p, []byte(s.tr.tail(1<<30)+"\n"), 0o644); err != nil {
				t.Log(err)
			}
		}
	}
	if failed {
		t.FailNow()
	}

	// The end: every session is told everything, then must see the truth.
	var alive []imap.UID
	for uid := range w.uidTok {
		if !w.deleted[uid] {
			alive = append(alive, uid)
		}
	}
	slices.Sort(alive)
	for uid, why := range w.mustGo {
		if !w.deleted[uid] {
			t.Errorf("UID %d survived, but %s", uid, why)
		}
	}
	var finalFlags map[imap.UID][]imap.Flag
	for _, s := range sessions {
		if err := s.noop(); err != nil {
			t.Fatalf("session %d: final NOOP: %v\n%s", s.id, err, s.tr.tail(40))
		}
		if err := s.st.violations(); err != nil {
			t.Fatalf("session %d: %v\n%s", s.id, err, s.tr.tail(40))
		}
		n := s.st.len()
		flags := map[imap.UID][]imap.Flag{}
		if n > 0 {
			var err error
			flags, err = s.fetchSeqs(imap.SeqSet{{Start: 1, Stop: uint32(n)}}, seqRange(n), n)
			if err != nil {
				t.Fatalf("session %d: final FETCH: %v\n%s", s.id, err, s.tr.tail(40))
			}
		}
		if got := s.st.snapshot(); !slices.Equal(got, alive) {
			t.Errorf("session %d ends with UIDs %v, the folder holds %v", s.id, got, alive)
		}
		if finalFlags == nil {
			finalFlags = flags
		}
		for _, uid := range alive {
			if got := flags[uid]; !slices.Equal(got, finalFlags[uid]) {
				t.Errorf("UID %d: session %d sees flags %v, session 0 %v", uid, s.id, got, finalFlags[uid])
			}
		}
	}
	for _, uid := range alive {
		var want []imap.Flag
		for _, s := range sessions {
			switch s.own[uid] {
			case kwOn:
				want = append(want, s.kw)
			case kwUnknown:
				t.Errorf("UID %d survived, but session %d's last STORE on it got no clear answer", uid, s.id)
			}
		}
		slices.Sort(want)
		got := slices.Clone(finalFlags[uid])
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("UID %d ends with flags %v; the sessions' last confirmed STOREs make %v", uid, got, want)
		}
	}

	// The bridge's Maildir holds exactly the surviving messages: nothing
	// leaked, nothing removed early.
	folders, err := e.db.Folders()
	if err != nil {
		t.Fatal(err)
	}
	var fid uint32
	for _, f := range folders {
		if f.Name == concFolder {
			fid = f.ID
		}
	}
	if fid == 0 {
		t.Fatalf("no folder %q in the index", concFolder)
	}
	cur := filepath.Join(e.dataDir, "maildir", strconv.FormatUint(uint64(fid), 10), "cur")
	ents, err := os.ReadDir(cur)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{} // token → file name
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join(cur, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		tok := ""
		if m := concTokenRE.FindSubmatch(data); m != nil {
			tok = string(m[1])
		}
		if want, ok := w.bodies[tok]; !ok || !bytes.Equal(data, want) {
			t.Errorf("Maildir file %s is not a message the test appended (token %q)", ent.Name(), tok)
			continue
		}
		if prev, dup := files[tok]; dup {
			t.Errorf("Maildir holds %s twice: %s and %s", tok, prev, ent.Name())
		}
		files[tok] = ent.Name()
	}
	for _, uid := range alive {
		tok := w.uidTok[uid]
		if _, ok := files[tok]; !ok {
			t.Errorf("UID %d (%s) survives but its Maildir file is gone", uid, tok)
		}
		delete(files, tok)
	}
	for tok, name := range files {
		t.Errorf("Maildir still holds %s (%s, UID %d) though it was expunged and every session was told", name, tok, w.tokUID[tok])
	}
	t.Logf("%d sessions × %d ops: %d messages appended, %d deleted, %d survive, %d files",
		concSessions, concOps, len(w.uidTok), len(w.deleted), len(alive), len(ents))
}

// concBody is a message carrying token, of varied size.
func concBody(rng *rand.Rand, token string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s@example.com\r\nTo: conc@example.com\r\nSubject: concurrency %s\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\nMessage-ID: <%s@conc.example>\r\nX-Conc-Token: %s\r\n\r\n", token, token, token, token)
	const words = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike"
	ws := strings.Fields(words)
	for range 1 + rng.Intn(40) {
		for j := range 1 + rng.Intn(12) {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(ws[rng.Intn(len(ws))])
		}
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

func seqRange(n int) map[uint32]bool {
	m := make(map[uint32]bool, n)
	for q := 1; q <= n; q++ {
		m[uint32(q)] = true
	}
	return m
}

// concWorld is the truth the sessions share.
type concWorld struct {
	mu          sync.Mutex
	uidValidity uint32
	bodies      map[string][]byte // token → the exact bytes appended
	tokUID      map[string]imap.UID
	uidTok      map[imap.UID]string
	owner       map[imap.UID]int
	deleting    map[imap.UID]bool   // its owner set (or is setting) \Deleted
	deleted     map[imap.UID]bool   // its owner's UID EXPUNGE confirmed it
	mustGo      map[imap.UID]string // a STORE on it got no clear answer: fine only if it was deleted
}

func (w *concWorld) register(token string, body []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.bodies[token]; dup {
		return fmt.Errorf("token %s registered twice", token)
	}
	w.bodies[token] = body
	return nil
}

// bind records that token is uid; a token has one UID, a UID one token.
func (w *concWorld) bind(token string, uid imap.UID) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bindLocked(token, uid)
}

func (w *concWorld) bindLocked(token string, uid imap.UID) error {
	if u, ok := w.tokUID[token]; ok && u != uid {
		return fmt.Errorf("message %s is UID %d, now also UID %d", token, u, uid)
	}
	if tk, ok := w.uidTok[uid]; ok && tk != token {
		return fmt.Errorf("UID %d is message %s, now also %s", uid, tk, token)
	}
	w.tokUID[token], w.uidTok[uid] = uid, token
	return nil
}

// checkBody checks that body is exactly the bytes registered for the token
// it carries, and that the token is uid.
func (w *concWorld) checkBody(uid imap.UID, body []byte) error {
	m := concTokenRE.FindSubmatch(body)
	if m == nil {
		return fmt.Errorf("UID %d: body of %d bytes carries no token: %.120q", uid, len(body), body)
	}
	token := string(m[1])
	w.mu.Lock()
	defer w.mu.Unlock()
	want, ok := w.bodies[token]
	if !ok {
		return fmt.Errorf("UID %d: token %s was never appended", uid, token)
	}
	if !bytes.Equal(body, want) {
		return fmt.Errorf("UID %d (%s): got %d bytes, appended %d (first difference at byte %d)", uid, token, len(body), len(want), firstDiff(body, want))
	}
	return w.bindLocked(token, uid)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func (w *concWorld) isDeleting(uid imap.UID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deleting[uid]
}

// kwState is a session's keyword on one message, as its last STORE said.
type kwState uint8

const (
	kwOff     kwState = iota // never set, or removed
	kwOn                     // set
	kwUnknown                // the STORE got no clear answer
)

// tracer keeps what a session sent and received, for the failure report.
type tracer struct {
	mu    sync.Mutex
	lines []string
}

func (tr *tracer) add(format string, args ...any) {
	tr.mu.Lock()
	tr.lines = append(tr.lines, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *tracer) tail(n int) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines[max(0, len(tr.lines)-n):], "\n")
}

// connState is one connection's picture of the selected folder, updated
// by the unilateral-data handler on the client's reader goroutine.
type connState struct {
	mu        sync.Mutex
	tr        *tracer
	model     []imap.UID         // seq n is model[n-1]; 0: UID not known yet
	announced map[imap.Flag]bool // the last FLAGS the server sent
	prev      map[imap.Flag]bool // FLAGS of the previous SELECT (late unilateral FETCH goroutines)
	seqCmd    bool               // a FETCH or STORE by sequence number is running
	expunging bool               // a UID EXPUNGE is running (its EXPUNGEs go to the command)
	viol      []string
}

func (st *connState) violf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	st.tr.add("  !! %s", msg)
	st.viol = append(st.viol, msg)
}

func (st *connState) violations() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.viol) == 0 {
		return nil
	}
	return errors.New(strings.Join(st.viol, "; "))
}

func (st *connState) snapshot() []imap.UID {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.model)
}

func (st *connState) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.model)
}

func (st *connState) setSeqCmd(on bool) {
	st.mu.Lock()
	st.seqCmd = on
	st.mu.Unlock()
}

func flagSet(fl []imap.Flag) map[imap.Flag]bool {
	m := make(map[imap.Flag]bool, len(fl))
	for _, f := range fl {
		m[f] = true
	}
	return m
}

func (st *connState) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.tr.add("  * %d EXPUNGE", seq)
			if st.seqCmd {
				st.violf("EXPUNGE %d sent during a FETCH/STORE by sequence number (RFC 3501 7.4.1)", seq)
			}
			if seq == 0 || int(seq) > len(st.model) {
				st.violf("EXPUNGE %d, but the client knows only %d messages", seq, len(st.model))
				return
			}
			st.model = slices.Delete(st.model, int(seq)-1, int(seq))
		},
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			st.mu.Lock()
			defer st.mu.Unlock()
			if d.Flags != nil {
				st.tr.add("  * FLAGS %v", d.Flags)
				st.announced = flagSet(d.Flags)
			}
			if d.NumMessages != nil {
				n := int(*d.NumMessages)
				st.tr.add("  * %d EXISTS", n)
				if st.expunging {
					return // ordered against the command's EXPUNGEs when it ends
				}
				if n < len(st.model) {
					st.violf("EXISTS %d is below the %d messages the client knows, without EXPUNGE", n, len(st.model))
					return
				}
				for len(st.model) < n {
					st.model = append(st.model, 0)
				}
			}
		},
		// Another session's flag change. imapclient runs this in a goroutine
		// of its own, so only what holds at any later time is checked.
		Fetch: func(m *imapclient.FetchMessageData) {
			buf, err := m.Collect()
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				st.violf("unilateral FETCH %d: %v", m.SeqNum, err)
				return
			}
			st.tr.add("  * %d FETCH (UID %d FLAGS %v) [unilateral]", buf.SeqNum, buf.UID, buf.Flags)
			for _, f := range buf.Flags {
				if !st.announced[f] && !st.prev[f] {
					st.violf("unilateral FETCH %d (UID %d) shows flag %s before any FLAGS listed it (RFC 3501 7.2.6)", buf.SeqNum, buf.UID, f)
				}
			}
		},
	}
}

// fill records that seq is uid, which must agree with what the client
// already knows (same UID there, UIDs ascending, no UID twice).
func (st *connState) fill(seq uint32, uid imap.UID) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq == 0 || int(seq) > len(st.model) {
		return fmt.Errorf("FETCH for seq %d, the client knows %d messages", seq, len(st.model))
	}
	if cur := st.model[seq-1]; cur != 0 {
		if cur != uid {
			return fmt.Errorf("seq %d is UID %d for the client, the server says UID %d", seq, cur, uid)
		}
		return nil
	}
	for i, u := range st.model {
		if u == 0 {
			continue
		}
		if (i < int(seq)-1 && u >= uid) || (i > int(seq)-1 && u <= uid) {
			return fmt.Errorf("seq %d is UID %d, but seq %d is UID %d (UIDs must ascend)", seq, uid, i+1, u)
		}
	}
	st.model[seq-1] = uid
	return nil
}

// pos is uid's sequence number in the model, 0 if not known.
func pos(model []imap.UID, uid imap.UID) uint32 {
	if i := slices.Index(model, uid); i >= 0 {
		return uint32(i) + 1
	}
	return 0
}

// concSession is one client and what it knows of the truth.
type concSession struct {
	id   int
	seed int64
	rng  *rand.Rand // the op sequence and its parameters: the same in every run
	pick *rand.Rand // which of the messages the client knows (depends on the interleaving)
	w    *concWorld
	addr string
	kw   imap.Flag // the only keyword this session changes

	c    *imapclient.Client
	st   *connState
	tr   *tracer
	own  map[imap.UID]kwState // this session's keyword per message
	mine []imap.UID           // messages only this session deletes (alive)
	nApp int
}

func (s *concSession) connect() error {
	s.st = &connState{tr: s.tr, announced: map[imap.Flag]bool{}, prev: map[imap.Flag]bool{}}
	c, err := imapclient.DialInsecure(s.addr, &imapclient.Options{UnilateralDataHandler: s.st.handler()})
	if err != nil {
		return err
	}
	s.c = c
	if err := c.Login("u", "pw").Wait(); err != nil {
		return fmt.Errorf("LOGIN: %w", err)
	}
	s.tr.add("connected")
	return s.selectBox()
}

func (s *concSession) run(ops, restartAt int) error {
	for i := range ops {
		if i == restartAt {
			s.tr.add("#%d LOGOUT, new connection", i)
			if err := s.c.Logout().Wait(); err != nil {
				return fmt.Errorf("LOGOUT: %w", err)
			}
			<-s.c.Closed() // the server has closed the session (its view)
			if err := s.connect(); err != nil {
				return fmt.Errorf("reconnect: %w", err)
			}
		}
		// Every op draws the same parameters, so that the op sequence
		// depends on the seed alone.
		p := opParams{k: 1 + s.rng.Intn(4), add: s.rng.Intn(2) == 0, byUID: s.rng.Intn(2) == 0, withKw: s.rng.Intn(3) == 0}
		var err error
		var name string
		switch r := s.rng.Intn(100); {
		case r < 18:
			name, err = "FETCH seqs", s.fetchSome(p)
		case r < 23:
			name, err = "FETCH 1:*", s.fetchAll()
		case r < 45:
			name, err = "UID FETCH", s.uidFetch(p)
		case r < 65:
			name, err = "STORE", s.store(p)
		case r < 79:
			name, err = "APPEND", s.append(p)
		case r < 90:
			name, err = "delete", s.del(p)
		case r < 97:
			name, err = "NOOP", s.noop()
		default:
			name, err = "SELECT", s.selectBox()
		}
		s.tr.add("#%d %s done", i, name)
		if err == nil {
			err = s.st.violations()
		}
		if err == nil && name != "SELECT" {
			// (imapclient records a SELECT's count only after Wait
			// returns; the SELECT data itself set the model.)
			err = s.checkCount()
		}
		if err != nil {
			return fmt.Errorf("op #%d (%s): %w", i, name, err)
		}
	}
	return nil
}

// checkCount compares the model's length with the count imapclient keeps
// from the same responses.
func (s *concSession) checkCount() error {
	mb := s.c.Mailbox()
	if mb == nil {
		return errors.New("no mailbox selected")
	}
	if n := s.st.len(); n != int(mb.NumMessages) {
		return fmt.Errorf("the model has %d messages, imapclient counts %d", n, mb.NumMessages)
	}
	return nil
}

func (s *concSession) selectBox() error {
	s.st.mu.Lock()
	s.st.prev = s.st.announced
	s.st.mu.Unlock()
	d, err := s.c.Select(concFolder, nil).Wait()
	if err != nil {
		return fmt.Errorf("SELECT: %w", err)
	}
	s.tr.add("SELECT → %d EXISTS, FLAGS %v", d.NumMessages, d.Flags)
	if d.UIDValidity != s.w.uidValidity {
		return fmt.Errorf("SELECT: UIDVALIDITY %d, APPEND said %d", d.UIDValidity, s.w.uidValidity)
	}
	s.st.mu.Lock()
	s.st.model = make([]imap.UID, d.NumMessages)
	s.st.announced = flagSet(d.Flags)
	s.st.mu.Unlock()
	return nil
}

func (s *concSession) noop() error {
	s.tr.add("NOOP")
	if err := s.c.Noop().Wait(); err != nil {
		return fmt.Errorf("NOOP: %w", err)
	}
	return nil
}

// checkFlags checks the flags a FETCH showed for uid: only flags the
// session was told about with FLAGS, only the test's own flags, \Deleted
// only where its owner set it, and (own) this session's keyword as its
// last STORE left it.
func (s *concSession) checkFlags(uid imap.UID, flags []imap.Flag, own bool) error {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	for _, f := range flags {
		if !s.st.announced[f] {
			return fmt.Errorf("UID %d shows flag %s, but the last FLAGS was %v (RFC 3501 7.2.6)", uid, f, mapKeys(s.st.announced))
		}
		switch {
		case f == imap.FlagDeleted:
			if !s.w.isDeleting(uid) {
				return fmt.Errorf("UID %d is \\Deleted, but its owner never set it", uid)
			}
		case strings.HasPrefix(string(f), "$s"):
		default:
			return fmt.Errorf("UID %d shows flag %s, which nobody set", uid, f)
		}
	}
	if own {
		switch st := s.own[uid]; {
		case st == kwOn && !hasFlag(flags, s.kw):
			return fmt.Errorf("UID %d lacks %s, which this session's last STORE set", uid, s.kw)
		case st == kwOff && hasFlag(flags, s.kw):
			return fmt.Errorf("UID %d has %s, which this session never set or removed last", uid, s.kw)
		}
	}
	return nil
}

func mapKeys(m map[imap.Flag]bool) []imap.Flag {
	out := make([]imap.Flag, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// opParams are an op's random parameters.
type opParams struct {
	k      int  // how many messages (1-4)
	add    bool // STORE +FLAGS (else -FLAGS)
	byUID  bool // UID STORE (else STORE by sequence number)
	withKw bool // APPEND with the session's keyword
}

func (s *concSession) fetchSome(p opParams) error {
	n := s.st.len()
	if n == 0 {
		return s.noop()
	}
	var set imap.SeqSet
	want := map[uint32]bool{}
	for range p.k {
		q := uint32(1 + s.pick.Intn(n))
		set.AddNum(q)
		want[q] = true
	}
	_, err := s.fetchSeqs(set, want, n)
	return err
}

func (s *concSession) fetchAll() error {
	n := s.st.len()
	if n == 0 {
		return s.noop()
	}
	_, err := s.fetchSeqs(imap.SeqSet{{Start: 1, Stop: 0}}, seqRange(n), n)
	return err
}

// fetchSeqs runs a FETCH by sequence number of want (n messages known when
// it is sent) and checks every answer; it returns the flags seen.
func (s *concSession) fetchSeqs(set imap.SeqSet, want map[uint32]bool, n int) (map[imap.UID][]imap.Flag, error) {
	s.tr.add("FETCH %v (UID FLAGS BODY.PEEK[])", set)
	s.st.setSeqCmd(true)
	msgs, err := s.c.Fetch(set, concFetch).Collect()
	s.st.setSeqCmd(false)
	for _, m := range msgs {
		s.tr.add("  * %d FETCH (UID %d FLAGS %v BODY[] %d bytes %s)", m.SeqNum, m.UID, m.Flags, len(m.FindBodySection(concSec)), tokenOf(m.FindBodySection(concSec)))
	}
	if err != nil {
		return nil, fmt.Errorf("FETCH %v: %w%s", set, err, s.unanswered(msgs, want))
	}
	got := map[uint32]bool{}
	flags := map[imap.UID][]imap.Flag{}
	for _, m := range msgs {
		if !want[m.SeqNum] {
			if int(m.SeqNum) > n && m.FindBodySection(concSec) == nil {
				// "n:*" also catches another session's flag change on a
				// message that arrived meanwhile: unilateral, not an answer.
				if err := s.checkFlags(m.UID, m.Flags, false); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("FETCH %v: answer for seq %d, which was not asked", set, m.SeqNum)
		}
		if got[m.SeqNum] {
			return nil, fmt.Errorf("FETCH %v: two answers for seq %d", set, m.SeqNum)
		}
		got[m.SeqNum] = true
		body := m.FindBodySection(concSec)
		if m.UID == 0 || body == nil {
			return nil, fmt.Errorf("FETCH %v: seq %d answered without UID or BODY[] (UID %d)", set, m.SeqNum, m.UID)
		}
		if err := s.w.checkBody(m.UID, body); err != nil {
			return nil, err
		}
		if err := s.st.fill(m.SeqNum, m.UID); err != nil {
			return nil, err
		}
		if err := s.checkFlags(m.UID, m.Flags, true); err != nil {
			return nil, err
		}
		fl := slices.Clone(m.Flags)
		slices.Sort(fl)
		flags[m.UID] = fl
	}
	for q := range want {
		if !got[q] {
			return nil, fmt.Errorf("FETCH %v: no answer for seq %d", set, q)
		}
	}
	return flags, nil
}

// unanswered names the asked sequence numbers that got no FETCH, with the
// UID the client has there (0: not known yet).
func (s *concSession) unanswered(msgs []*imapclient.FetchMessageBuffer, want map[uint32]bool) string {
	got := map[uint32]bool{}
	for _, m := range msgs {
		got[m.SeqNum] = true
	}
	model := s.st.snapshot()
	var out []string
	for q := range want {
		if !got[q] && int(q) <= len(model) {
			out = append(out, fmt.Sprintf("seq %d (UID %d)", q, model[q-1]))
		}
	}
	if len(out) == 0 {
		return ""
	}
	slices.Sort(out)
	return "; no answer for " + strings.Join(out, ", ")
}

func fmtAnswers(msgs []*imapclient.FetchMessageBuffer) string {
	var out []string
	for _, m := range msgs {
		out = append(out, fmt.Sprintf("* %d FETCH (UID %d FLAGS %v)", m.SeqNum, m.UID, m.Flags))
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func tokenOf(body []byte) string {
	if m := concTokenRE.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// knownUIDs returns up to k random UIDs the model knows.
func (s *concSession) knownUIDs(k int) []imap.UID {
	var known []imap.UID
	for _, u := range s.st.snapshot() {
		if u != 0 {
			known = append(known, u)
		}
	}
	s.pick.Shuffle(len(known), func(i, j int) { known[i], known[j] = known[j], known[i] })
	return known[:min(k, len(known))]
}

// uidFetch fetches UIDs the client knows: each must come back, with its
// bytes, even when another session expunged it and this one was not told.
func (s *concSession) uidFetch(p opParams) error {
	uids := s.knownUIDs(p.k)
	if len(uids) == 0 {
		return s.fetchSome(p)
	}
	var set imap.UIDSet
	set.AddNum(uids...)
	pre := s.st.snapshot()
	s.tr.add("UID FETCH %v (UID FLAGS BODY.PEEK[])", set)
	msgs, err := s.c.Fetch(set, concFetch).Collect()
	for _, m := range msgs {
		s.tr.add("  * %d FETCH (UID %d FLAGS %v BODY[] %d bytes %s)", m.SeqNum, m.UID, m.Flags, len(m.FindBodySection(concSec)), tokenOf(m.FindBodySection(concSec)))
	}
	if err != nil {
		var missing []imap.UID
		for _, u := range uids {
			if !slices.ContainsFunc(msgs, func(m *imapclient.FetchMessageBuffer) bool { return m.UID == u }) {
				missing = append(missing, u)
			}
		}
		return fmt.Errorf("UID FETCH %v of messages the client still has: %w (no answer for UIDs %v)", set, err, missing)
	}
	post := s.st.snapshot()
	got := map[imap.UID]bool{}
	for _, m := range msgs {
		if !set.Contains(m.UID) || got[m.UID] {
			return fmt.Errorf("UID FETCH %v: unexpected answer for UID %d", set, m.UID)
		}
		got[m.UID] = true
		body := m.FindBodySection(concSec)
		if body == nil {
			return fmt.Errorf("UID FETCH %v: UID %d answered without BODY[]", set, m.UID)
		}
		if err := s.w.checkBody(m.UID, body); err != nil {
			return err
		}
		if p, q := pos(pre, m.UID), pos(post, m.UID); m.SeqNum != p && m.SeqNum != q {
			return fmt.Errorf("UID FETCH: UID %d came as seq %d; the client has it at %d (before) / %d (after)", m.UID, m.SeqNum, p, q)
		}
		if err := s.checkFlags(m.UID, m.Flags, true); err != nil {
			return err
		}
	}
	for _, u := range uids {
		if !got[u] {
			return fmt.Errorf("UID FETCH %v: no answer for UID %d, which the client still has", set, u)
		}
	}
	return nil
}

// store adds or removes this session's keyword on messages it knows, by
// sequence number or UID; the answer must show the keyword as just set.
func (s *concSession) store(p opParams) error {
	uids := s.knownUIDs(min(p.k, 3))
	if len(uids) == 0 {
		return s.fetchSome(p)
	}
	add := p.add
	op := imap.StoreFlagsDel
	if add {
		op = imap.StoreFlagsAdd
	}
	byUID := p.byUID
	pre := s.st.snapshot()
	var set imap.NumSet
	seqUID := map[uint32]imap.UID{}
	if byUID {
		var us imap.UIDSet
		us.AddNum(uids...)
		set = us
	} else {
		var ss imap.SeqSet
		for _, u := range uids {
			q := pos(pre, u)
			ss.AddNum(q)
			seqUID[q] = u
		}
		set = ss
		s.st.setSeqCmd(true)
	}
	sign := map[bool]string{true: "+", false: "-"}[add]
	s.tr.add("%sSTORE %v %sFLAGS (%s)", map[bool]string{true: "UID ", false: ""}[byUID], set, sign, s.kw)
	msgs, err := s.c.Store(set, &imap.StoreFlags{Op: op, Flags: []imap.Flag{s.kw}}, nil).Collect()
	s.st.setSeqCmd(false)
	for _, m := range msgs {
		s.tr.add("  * %d FETCH (UID %d FLAGS %v)", m.SeqNum, m.UID, m.Flags)
	}
	if err != nil {
		return fmt.Errorf("STORE %v: %w", set, err)
	}
	post := s.st.snapshot()
	answered := map[imap.UID][]imap.Flag{}
	for _, m := range msgs {
		uid := m.UID
		if !byUID {
			want, ok := seqUID[m.SeqNum]
			if !ok {
				return fmt.Errorf("STORE %v: answer for seq %d, which was not asked", set, m.SeqNum)
			}
			if uid != want {
				return fmt.Errorf("STORE %v: seq %d answered as UID %d, the client has UID %d there", set, m.SeqNum, uid, want)
			}
		} else {
			if !slices.Contains(uids, uid) {
				return fmt.Errorf("STORE %v: answer for UID %d, which was not asked", set, uid)
			}
			if p, q := pos(pre, uid), pos(post, uid); m.SeqNum != p && m.SeqNum != q {
				if q != 0 {
					return fmt.Errorf("UID STORE: UID %d came as seq %d; the client has it at %d (before) / %d (after)", uid, m.SeqNum, p, q)
				}
				// Expunged by its owner during this STORE, which then did
				// not answer for it: imapclient took another session's
				// flag change, sent after some EXPUNGEs, for the answer.
				if err := s.checkFlags(uid, m.Flags, false); err != nil {
					return err
				}
				continue
			}
		}
		if _, dup := answered[uid]; dup {
			return fmt.Errorf("STORE %v: two answers for UID %d", set, uid)
		}
		if err := s.checkFlags(uid, m.Flags, false); err != nil {
			return err
		}
		answered[uid] = m.Flags
	}
	for _, uid := range uids {
		fl, ok := answered[uid]
		switch {
		case ok && hasFlag(fl, s.kw) == add:
			s.own[uid] = map[bool]kwState{true: kwOn, false: kwOff}[add]
		case ok:
			// Possibly another session's change, sent unilaterally, for a
			// message expunged meanwhile (imapclient can't tell them apart).
			s.own[uid] = kwUnknown
			s.setMustGo(uid, fmt.Sprintf("session %d's STORE %s%s was answered with FLAGS %v", s.id, sign, s.kw, fl))
		default:
			s.own[uid] = kwUnknown
			s.setMustGo(uid, fmt.Sprintf("session %d's STORE %s%s got no FETCH for it", s.id, sign, s.kw))
		}
	}
	return nil
}

func (s *concSession) setMustGo(uid imap.UID, why string) {
	s.w.mu.Lock()
	s.w.mustGo[uid] = why
	s.w.mu.Unlock()
}

func (s *concSession) append(p opParams) error {
	s.nApp++
	token := fmt.Sprintf("s%d-%d", s.id, s.nApp)
	body := concBody(rand.New(rand.NewSource(s.seed<<16+int64(s.nApp))), token)
	if err := s.w.register(token, body); err != nil {
		return err
	}
	var opts *imap.AppendOptions
	withKw := p.withKw
	if withKw {
		opts = &imap.AppendOptions{Flags: []imap.Flag{s.kw}}
	}
	s.tr.add("APPEND %s (%d bytes, keyword %v)", token, len(body), withKw)
	cmd := s.c.Append(concFolder, int64(len(body)), opts)
	if _, err := cmd.Write(body); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	ad, err := cmd.Wait()
	if err != nil {
		return fmt.Errorf("APPEND %s: %w", token, err)
	}
	s.tr.add("  APPENDUID %d %d", ad.UIDValidity, ad.UID)
	if ad.UID == 0 || ad.UIDValidity != s.w.uidValidity {
		return fmt.Errorf("APPEND %s: APPENDUID %d %d (UIDVALIDITY is %d)", token, ad.UIDValidity, ad.UID, s.w.uidValidity)
	}
	s.w.mu.Lock()
	err = s.w.bindLocked(token, ad.UID)
	s.w.owner[ad.UID] = s.id
	s.w.mu.Unlock()
	if err != nil {
		return fmt.Errorf("APPEND %s: %w", token, err)
	}
	if withKw {
		s.own[ad.UID] = kwOn
	}
	s.mine = append(s.mine, ad.UID)
	return nil
}

// del deletes one of the session's own messages with STORE \Deleted + UID
// EXPUNGE; the session must get the EXPUNGE for it.
func (s *concSession) del(p opParams) error {
	if len(s.mine) == 0 {
		return s.append(p)
	}
	i := s.pick.Intn(len(s.mine))
	uid := s.mine[i]
	if pos(s.st.snapshot(), uid) == 0 {
		// Learn where it is (the session has it: it appended it, or had it
		// since SELECT): FETCH every position the client doesn't know.
		var set imap.SeqSet
		want := map[uint32]bool{}
		snap := s.st.snapshot()
		for j, u := range snap {
			if u == 0 {
				set.AddNum(uint32(j) + 1)
				want[uint32(j)+1] = true
			}
		}
		if len(want) > 0 {
			if _, err := s.fetchSeqs(set, want, len(snap)); err != nil {
				return err
			}
		}
		if pos(s.st.snapshot(), uid) == 0 {
			return fmt.Errorf("UID %d (appended by this session, never deleted) is not in its view %v", uid, s.st.snapshot())
		}
	}
	s.w.mu.Lock()
	s.w.deleting[uid] = true
	s.w.mu.Unlock()
	pre := s.st.snapshot()
	s.tr.add("UID STORE %d +FLAGS (\\Deleted)", uid)
	msgs, err := s.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
	for _, m := range msgs {
		s.tr.add("  * %d FETCH (UID %d FLAGS %v)", m.SeqNum, m.UID, m.Flags)
	}
	if err != nil {
		return fmt.Errorf("UID STORE %d +FLAGS (\\Deleted): %w", uid, err)
	}
	post := s.st.snapshot()
	if len(msgs) != 1 || msgs[0].UID != uid || !hasFlag(msgs[0].Flags, imap.FlagDeleted) {
		return fmt.Errorf("UID STORE %d +FLAGS (\\Deleted): answer %s, want UID %d with \\Deleted", uid, fmtAnswers(msgs), uid)
	}
	if p, q := pos(pre, uid), pos(post, uid); msgs[0].SeqNum != p && msgs[0].SeqNum != q {
		return fmt.Errorf("UID STORE: UID %d came as seq %d; the client has it at %d (before) / %d (after)", uid, msgs[0].SeqNum, p, q)
	}
	if err := s.checkFlags(uid, msgs[0].Flags, true); err != nil {
		return err
	}

	s.st.mu.Lock()
	s.st.expunging = true
	before := len(s.st.model)
	s.st.mu.Unlock()
	s.tr.add("UID EXPUNGE %d", uid)
	cmd := s.c.UIDExpunge(imap.UIDSetNum(uid))
	var seqs []uint32
	for q := cmd.Next(); q != 0; q = cmd.Next() {
		seqs = append(seqs, q)
	}
	err = cmd.Close()
	removed, cerr := s.endExpunge(seqs, before)
	if err != nil {
		return fmt.Errorf("UID EXPUNGE %d: %w", uid, err)
	}
	if cerr != nil {
		return fmt.Errorf("UID EXPUNGE %d: %w", uid, cerr)
	}
	if !slices.Contains(removed, uid) {
		return fmt.Errorf("UID EXPUNGE %d: EXPUNGEs %v, none for it (the client had it at seq %d)", uid, seqs, pos(post, uid))
	}
	s.w.mu.Lock()
	s.w.deleted[uid] = true
	s.w.mu.Unlock()
	s.mine = slices.Delete(s.mine, i, i+1)
	return nil
}

// endExpunge applies the EXPUNGEs a UID EXPUNGE collected. imapclient hands
// them over through the command while EXISTS goes to the handler, so their
// order is lost; it does not matter for the messages the client knew when
// the command started (new ones are only ever added after them): an
// EXPUNGE at or below the count of those still left removes one of them,
// one above removes a newcomer. The final count is imapclient's, which
// follows the wire order.
func (s *concSession) endExpunge(seqs []uint32, before int) ([]imap.UID, error) {
	st := s.st
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expunging = false
	for _, q := range seqs {
		st.tr.add("  * %d EXPUNGE", q)
	}
	if len(st.model) != before {
		return nil, fmt.Errorf("the model changed during UID EXPUNGE (%d → %d messages)", before, len(st.model))
	}
	var removed []imap.UID
	for _, q := range seqs {
		if q == 0 {
			return nil, errors.New("EXPUNGE 0")
		}
		if int(q) <= len(st.model) {
			removed = append(removed, st.model[q-1])
			st.model = slices.Delete(st.model, int(q)-1, int(q))
		}
	}
	mb := s.c.Mailbox()
	if mb == nil {
		return nil, errors.New("no mailbox selected")
	}
	n := int(mb.NumMessages)
	if n < len(st.model) {
		return nil, fmt.Errorf("after UID EXPUNGE imapclient counts %d messages, fewer than the %d the client still knows", n, len(st.model))
	}
	for len(st.model) < n {
		st.model = append(st.model, 0)
	}
	return removed, nil
}

// TestExpungedKeptForEveryViewThatHoldsIt is the smallest interleaving
// the model test runs into, made deterministic: A appends a message, B
// learns of it (NOOP), A deletes it, then C — which never saw it — polls
// and is told of both the arrival and the expunge. B was not told of the
// expunge yet, so it must still get the message's bytes from UID FETCH and
// its file must still be in the bridge's Maildir until B is told.
func TestExpungedKeptForEveryViewThatHoldsIt(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	const folder = "Local/Limbo"
	a := e.client(nil)
	if err := a.Create(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	b, c := dialRaw(t, e.addr), dialRaw(t, e.addr)
	b.do("SELECT " + folder)
	c.do("SELECT " + folder)

	body := "From: a@example.com\r\nSubject: limbo\r\nMessage-ID: <limbo@example.com>\r\n\r\nstill here for B\r\n"
	uid := appendOK(t, a, folder, []byte(body))
	if out := b.do("NOOP"); !strings.Contains(out, "* 1 EXISTS") {
		t.Fatalf("B's NOOP after the APPEND:\n%s", out)
	}
	if err := a.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
	if out := c.do("NOOP"); !strings.Contains(out, "* 1 EXPUNGE") {
		t.Fatalf("C's NOOP after the expunge:\n%s", out)
	}

	cur := filepath.Join(e.dataDir, "maildir")
	countFiles := func() int {
		n := 0
		filepath.Walk(cur, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && filepath.Base(filepath.Dir(p)) == "cur" {
				n++
			}
			return nil
		})
		return n
	}
	if n := countFiles(); n != 1 {
		t.Errorf("B still holds UID %d, but the bridge's Maildir has %d files for it", uid, n)
	}
	out := b.do(fmt.Sprintf("UID FETCH %d (UID BODY.PEEK[])", uid))
	if !strings.Contains(out, body) {
		t.Errorf("B (not told of the expunge) fetched UID %d and got no bytes:\n%s", uid, out)
	}
	// B is told now (UID FETCH may send the EXPUNGE) or at the latest at NOOP.
	if out += b.do("NOOP"); !strings.Contains(out, "* 1 EXPUNGE") {
		t.Errorf("B was never told of the expunge:\n%s", out)
	}
	if n := countFiles(); n != 0 {
		t.Errorf("every session was told; the bridge's Maildir still has %d files", n)
	}
}

// TestExpungedBeforeAViewLearntOfIt: A appends a message and deletes it
// before B has polled at all. B's next SEARCH (no EXPUNGE allowed, RFC
// 3501 7.4.1) tells it "1 EXISTS" and stops before the expunge, so B now
// addresses the message as seq 1: FETCH 1 must return its bytes, and its
// file must stay until B is told of the expunge.
func TestExpungedBeforeAViewLearntOfIt(t *testing.T) {
	src, _ := mboxSource(t, mbox(1))
	e := newEnv(t, src)
	const folder = "Local/Limbo"
	a := e.client(nil)
	if err := a.Create(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	b := dialRaw(t, e.addr)
	b.do("SELECT " + folder)

	body := "From: a@example.com\r\nSubject: limbo 2\r\nMessage-ID: <limbo2@example.com>\r\n\r\nB was told it exists\r\n"
	uid := appendOK(t, a, folder, []byte(body))
	if err := a.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.UIDExpunge(imap.UIDSetNum(uid)).Close(); err != nil {
		t.Fatal(err)
	}
	out := b.do("SEARCH ALL")
	if strings.Contains(out, "EXPUNGE") {
		t.Fatalf("EXPUNGE during SEARCH (RFC 3501 7.4.1):\n%s", out)
	}
	if !strings.Contains(out, "* 1 EXISTS") {
		// The server may also keep the arrival for later; then there is
		// nothing B can address yet.
		t.Skipf("B was not told of the arrival during SEARCH:\n%s", out)
	}
	var files []string
	filepath.Walk(filepath.Join(e.dataDir, "maildir"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && filepath.Base(filepath.Dir(p)) == "cur" {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Errorf("B addresses UID %d as seq 1, but the bridge's Maildir has %d files for it", uid, len(files))
	}
	out = b.do("FETCH 1 (UID BODY.PEEK[])")
	if !strings.Contains(out, fmt.Sprintf("* 1 FETCH (UID %d BODY[] {%d}\r\n%s)", uid, len(body), body)) {
		t.Errorf("B (told 1 EXISTS, not told of the expunge) fetched seq 1 and got:\n%s", out)
	}
	if out += b.do("NOOP"); !strings.Contains(out, "* 1 EXPUNGE") {
		t.Errorf("B was never told of the expunge:\n%s", out)
	}
}
