package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/text/encoding/japanese"

	"github.com/popbridge/popbridge/backend/archive"
)

// corpusSpec describes a generated mbox. The same spec always yields the
// same bytes.
type corpusSpec struct {
	Seed     uint64 `json:"seed"`
	Size     int64  `json:"size"`     // at least this many bytes (0: no minimum)
	Messages int    `json:"messages"` // at least this many messages
	// Small generates only 2–4 KB messages (the first-sync corpus); Size is
	// then ignored.
	Small   bool `json:"small"`
	Version int  `json:"version"` // bump when the generator's output changes
}

const generatorVersion = 1

// corpusStats summarises a generated mbox.
type corpusStats struct {
	Path     string        `json:"path"`
	Bytes    int64         `json:"bytes"`
	Messages int           `json:"messages"`
	Large    int           `json:"large"`    // messages over 100 KiB (base64 attachments)
	Japanese int           `json:"japanese"` // ISO-2022-JP messages
	CRLF     int           `json:"crlf"`     // messages with CRLF line ends
	Min      int64         `json:"min"`      // smallest message (mbox entry) in bytes
	Max      int64         `json:"max"`      // largest message
	Elapsed  time.Duration `json:"elapsed"`  // generation time (0 when reused)
	Reused   bool          `json:"-"`
}

// Size distribution of the archive corpus. Most messages are short text;
// some are HTML newsletters; a few carry base64 attachments. The share of
// the latter is adapted while generating so that the corpus reaches its
// byte size at about its message count.
const (
	minSmall    = 1 << 10
	maxSmall    = 8 << 10
	maxMedium   = 80 << 10
	minLarge    = 64 << 10
	maxMessage  = 2 << 20
	largeCutoff = 100 << 10
)

// meanLarge is the mean of the log-uniform attachment size in
// [minLarge, maxMessage): (b-a)/ln(b/a).
var meanLarge = float64(maxMessage-minLarge) / math.Log(float64(maxMessage)/float64(minLarge))

// generator writes one deterministic mbox.
type generator struct {
	rng   *rand.Rand
	w     *bufio.Writer
	spec  corpusSpec
	stats corpusStats

	msg    []byte // the message being built (LF line ends)
	lines  []string
	jp     []string // ISO-2022-JP encoded body lines
	jpSub  []string // ISO-2022-JP encoded-word subjects
	jpName []string // ISO-2022-JP encoded-word display names
	b64    string   // base64 pool, 76-column lines ending in LF

	smallBytes, smallCount int64 // running mean of the non-attachment messages
}

var words = strings.Fields(`the a of to and in that is was for on it with as at by this from or
be are have had not but were which their all there been one will would more when so if about
who out up what can into them some could time only other than then its also two new may
meeting report invoice order shipment account password reminder schedule friday monday
please thanks regards attached draft review budget quarter project update weekend photos
family dinner holiday travel ticket flight hotel conference agenda minutes notes question
answer server backup disk mailbox archive folder message printer network office library`)

var firstNames = strings.Fields(`Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory
Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yuki Hiroshi Akiko Kenji Sakura Taro Hanako
Marie Pierre Hans Greta Lars Ingrid Pablo Lucia Marco Giulia`)

var lastNames = strings.Fields(`Smith Jones Brown Taylor Wilson Evans Thomas Roberts Walker
Wright Robinson Suzuki Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Dubois Martin Muller
Schmidt Garcia Rossi Ferrari Larsen Nilsson`)

var domains = strings.Fields(`example.com example.org example.net mail.example.jp
isp.example.co.uk uni.example.edu corp.example.de shop.example.fr`)

var japaneseText = []string{
	"お世話になっております。",
	"来週の会議の件でご連絡いたします。",
	"添付の資料をご確認ください。",
	"よろしくお願いいたします。",
	"先日はありがとうございました。",
	"日程の調整をお願いできますでしょうか。",
	"請求書を送付いたします。",
	"ご不明な点がございましたらお知らせください。",
	"今月末までにご返信いただけますと幸いです。",
	"写真を送ります。楽しい旅行でした。",
}

var japaneseSubjects = []string{
	"会議の件",
	"請求書送付のお知らせ",
	"Re: 日程調整",
	"写真",
	"お問い合わせありがとうございます",
	"週報",
}

var japaneseNames = []string{"山田 太郎", "鈴木 花子", "佐藤 健二", "田中 さくら"}

var zones = []string{"+0000", "+0100", "+0200", "-0500", "-0800", "+0900", "+0530", "-0300"}

func newGenerator(spec corpusSpec, w *bufio.Writer) *generator {
	g := &generator{
		rng:  rand.New(rand.NewPCG(spec.Seed, 0x706f7062656e6368)),
		w:    w,
		spec: spec,
	}
	// A pool of body lines; some start with "From " and are quoted
	// (mboxrd), as every mbox writer does.
	g.lines = make([]string, 4096)
	for i := range g.lines {
		var b strings.Builder
		if g.rng.IntN(150) == 0 {
			b.WriteString(">From the minutes:")
		}
		for b.Len() < 40+g.rng.IntN(36) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[g.rng.IntN(len(words))])
		}
		g.lines[i] = b.String()
	}
	enc := japanese.ISO2022JP.NewEncoder()
	for _, s := range japaneseText {
		e, err := enc.String(s)
		if err != nil {
			panic(err) // fixed text: cannot fail
		}
		g.jp = append(g.jp, e)
	}
	word := func(s string) string {
		e, err := enc.String(s)
		if err != nil {
			panic(err) // fixed text: cannot fail
		}
		return "=?ISO-2022-JP?B?" + base64.StdEncoding.EncodeToString([]byte(e)) + "?="
	}
	for _, s := range japaneseSubjects {
		g.jpSub = append(g.jpSub, word(s))
	}
	for _, s := range japaneseNames {
		g.jpName = append(g.jpName, word(s))
	}
	// 3 MiB of random data, base64 in 76-column lines (what MUAs write).
	raw := make([]byte, 3<<20)
	for i := 0; i+8 <= len(raw); i += 8 {
		v := g.rng.Uint64()
		for k := range 8 {
			raw[i+k] = byte(v >> (8 * k))
		}
	}
	enc64 := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.Grow(len(enc64) + len(enc64)/76 + 1)
	for len(enc64) > 76 {
		b.WriteString(enc64[:76])
		b.WriteByte('\n')
		enc64 = enc64[76:]
	}
	g.b64 = b.String()
	return g
}

// generate writes the whole corpus.
func (g *generator) generate() error {
	for i := 0; ; i++ {
		if i >= g.spec.Messages && (g.spec.Small || g.stats.Bytes >= g.spec.Size) {
			break
		}
		if err := g.message(i); err != nil {
			return err
		}
	}
	return g.w.Flush()
}

// largeShare is the probability that the next message carries an
// attachment: what is left of the byte budget, spread over the messages
// still to come, against the mean sizes of both kinds.
func (g *generator) largeShare(i int) float64 {
	remBytes := float64(g.spec.Size - g.stats.Bytes)
	if remBytes <= 0 {
		return 0
	}
	remCount := float64(max(g.spec.Messages-i, 1))
	small := 9000.0
	if g.smallCount > 50 {
		small = float64(g.smallBytes) / float64(g.smallCount)
	}
	p := (remBytes/remCount - small) / (meanLarge - small)
	return min(max(p, 0.002), 0.6)
}

func (g *generator) logUniform(lo, hi int) int {
	return int(math.Exp(math.Log(float64(lo)) + g.rng.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
}

func (g *generator) pick(s []string) string { return s[g.rng.IntN(len(s))] }

func (g *generator) add(parts ...string) {
	for _, p := range parts {
		g.msg = append(g.msg, p...)
	}
}

func (g *generator) addf(format string, args ...any) {
	g.msg = fmt.Appendf(g.msg, format, args...)
}

// textBody adds lines until the message is at least n bytes long.
func (g *generator) textBody(n int) {
	for len(g.msg) < n {
		g.add(g.pick(g.lines), "\n")
		if g.rng.IntN(12) == 0 {
			g.add("\n")
		}
	}
}

func (g *generator) message(i int) error {
	g.msg = g.msg[:0]
	r := g.rng
	date := time.Date(2003, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(13 * 365 * 24 * time.Hour))))
	date = date.Truncate(time.Second)
	zone := g.pick(zones)
	zt, _ := time.Parse("-0700", zone)
	local := date.In(zt.Location())
	fromName := g.pick(firstNames) + " " + g.pick(lastNames)
	fromAddr := strings.ToLower(strings.ReplaceAll(fromName, " ", ".")) + "@" + g.pick(domains)

	kind := "small"
	switch {
	case g.spec.Small:
		if r.IntN(100) < 8 {
			kind = "japanese"
		}
	case r.Float64() < g.largeShare(i):
		kind = "large"
	default:
		switch n := r.IntN(100); {
		case n < 8:
			kind = "japanese"
		case n < 28:
			kind = "medium"
		}
	}

	// "From " separator: Thunderbird's "From - date" or a sender address.
	if r.IntN(2) == 0 {
		g.addf("From - %s\n", date.Format("Mon Jan _2 15:04:05 2006"))
	} else {
		g.addf("From %s %s\n", fromAddr, date.Format("Mon Jan _2 15:04:05 2006"))
	}
	if r.IntN(3) == 0 {
		status := []string{"0000", "0001", "0003", "0005", "1001"}[r.IntN(5)]
		g.addf("X-Mozilla-Status: %s\nX-Mozilla-Status2: 00000000\n", status)
	}
	g.addf("Return-Path: <%s>\n", fromAddr)
	for k := range 1 + r.IntN(3) {
		g.addf("Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby pop.example.org with ESMTP id %08X%d;\n\t%s\n",
			k+1, g.pick(domains), k+1, g.pick(domains), r.IntN(250)+1, r.Uint32(), i, local.Add(-time.Duration(k)*time.Minute).Format(time.RFC1123Z))
	}
	g.addf("Message-ID: <%d.%d.%08x@%s>\n", g.spec.Seed, i, r.Uint32(), g.pick(domains))
	g.addf("Date: %s\n", local.Format(time.RFC1123Z))
	if kind == "japanese" {
		g.addf("From: %s <%s>\n", g.pick(g.jpName), fromAddr)
		g.addf("Subject: %s\n", g.pick(g.jpSub))
	} else {
		g.addf("From: %s <%s>\n", fromName, fromAddr)
		subj := make([]string, 3+r.IntN(6))
		for k := range subj {
			subj[k] = g.pick(words)
		}
		re := ""
		if r.IntN(4) == 0 {
			re = "Re: "
		}
		g.addf("Subject: %s%s (#%d)\n", re, strings.Join(subj, " "), i)
	}
	g.addf("To: %s %s <you@example.org>\n", g.pick(firstNames), g.pick(lastNames))
	if r.IntN(4) == 0 {
		g.addf("Cc: %s <%s@%s>, %s <%s@%s>\n", g.pick(firstNames), strings.ToLower(g.pick(lastNames)), g.pick(domains),
			g.pick(firstNames), strings.ToLower(g.pick(lastNames)), g.pick(domains))
	}
	if r.IntN(5) == 0 {
		g.addf("In-Reply-To: <%d.%d.%08x@%s>\n", g.spec.Seed, r.IntN(i+1), r.Uint32(), g.pick(domains))
	}
	g.add("MIME-Version: 1.0\n")

	switch kind {
	case "small":
		target := g.logUniform(minSmall, maxSmall)
		if g.spec.Small {
			target = 2048 + r.IntN(2048)
		}
		g.add("Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n")
		g.textBody(target)
	case "japanese":
		target := g.logUniform(minSmall, 6<<10)
		if g.spec.Small {
			target = 2048 + r.IntN(2048)
		}
		g.add("Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n")
		for len(g.msg) < target {
			g.add(g.pick(g.jp), "\n")
		}
	case "medium":
		target := g.logUniform(maxSmall, maxMedium)
		bnd := fmt.Sprintf("----=_Part_%d_%08x", i, r.Uint32())
		g.addf("Content-Type: multipart/alternative;\n\tboundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n", bnd)
		g.addf("--%s\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n", bnd)
		g.textBody(len(g.msg) + (target-len(g.msg))/3)
		g.addf("\n--%s\nContent-Type: text/html; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n<html><body>\n", bnd)
		for len(g.msg) < target {
			g.add("<p>", g.pick(g.lines), "</p>\n")
		}
		g.addf("</body></html>\n\n--%s--\n", bnd)
	case "large":
		target := g.logUniform(minLarge, maxMessage-(4<<10))
		bnd := fmt.Sprintf("------------%016x", r.Uint64())
		g.addf("Content-Type: multipart/mixed;\n boundary=\"%s\"\n\nThis is a multi-part message in MIME format.\n", bnd)
		g.addf("--%s\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n", bnd)
		g.textBody(len(g.msg) + 300 + r.IntN(1500))
		name, ctype := "scan.pdf", "application/pdf"
		if r.IntN(2) == 0 {
			name, ctype = "IMG_0042.JPG", "image/jpeg"
		}
		g.addf("\n--%s\nContent-Type: %s;\n name=\"%s\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment;\n filename=\"%s\"\n\n", bnd, ctype, name, name)
		n := max(target-len(g.msg)-64, 77) / 77 * 77 // whole lines
		start := r.IntN((len(g.b64)-n)/77) * 77
		g.add(g.b64[start : start+n])
		g.addf("\n--%s--\n", bnd)
	}
	g.add("\n") // the empty line before the next "From "

	msg := g.msg
	crlf := r.IntN(5) == 0 // written by a Windows client
	if crlf {
		msg = toCRLF(msg)
	}
	if _, err := g.w.Write(msg); err != nil {
		return err
	}
	n := int64(len(msg))
	s := &g.stats
	if s.Messages == 0 || n < s.Min {
		s.Min = n
	}
	s.Max = max(s.Max, n)
	s.Messages++
	s.Bytes += n
	if crlf {
		s.CRLF++
	}
	switch kind {
	case "japanese":
		s.Japanese++
	case "large":
	default:
		g.smallBytes += n
		g.smallCount++
	}
	if n > largeCutoff {
		s.Large++
	}
	return nil
}

func toCRLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }

// ensureCorpus generates the mbox at path for spec, or reuses the file
// there if a sidecar records the same spec (the -dir cache).
func ensureCorpus(path string, spec corpusSpec) (*corpusStats, error) {
	spec.Version = generatorVersion
	meta := path + ".json"
	if st, ok := reuseCorpus(path, meta, spec); ok {
		return st, nil
	}
	start := time.Now()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create corpus %s: %w", tmp, err)
	}
	g := newGenerator(spec, bufio.NewWriterSize(f, 1<<20))
	err = g.generate()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("write corpus %s: %w", path, err)
	}
	st := g.stats
	st.Path = path
	st.Elapsed = time.Since(start)
	b, _ := json.Marshal(struct {
		Spec  corpusSpec  `json:"spec"`
		Stats corpusStats `json:"stats"`
	}{spec, st})
	if err := os.WriteFile(meta, b, 0o644); err != nil {
		return nil, fmt.Errorf("write corpus sidecar %s: %w", meta, err)
	}
	return &st, nil
}

func reuseCorpus(path, meta string, spec corpusSpec) (*corpusStats, bool) {
	b, err := os.ReadFile(meta)
	if err != nil {
		return nil, false
	}
	var side struct {
		Spec  corpusSpec  `json:"spec"`
		Stats corpusStats `json:"stats"`
	}
	if json.Unmarshal(b, &side) != nil || side.Spec != spec {
		return nil, false
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != side.Stats.Bytes {
		return nil, false
	}
	st := side.Stats
	st.Path, st.Reused = path, true
	return &st, true
}

// writeMaildir writes every message of the mbox as a Maildir file in
// dir/cur, holding exactly the bytes the bridge serves for it (CRLF, no
// "From " line, Thunderbird fields removed), named as Dovecot names its own
// deliveries so that it trusts S= and W= for RFC822.SIZE.
func writeMaildir(mboxPath, dir string) (int, error) {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return 0, err
		}
	}
	f, err := os.Open(mboxPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := 0
	var buf []byte
	_, probs, err := archive.ScanMbox(f, mboxPath, 0, fi.Size(), func(e archive.MboxEntry) error {
		n++
		buf = archive.AppendServedMbox(buf[:0], e.Raw)
		info := ""
		for _, fl := range archive.ParseMeta(e.Raw).Flags {
			if fl == `\Answered` {
				info += "R"
			}
			if fl == `\Seen` {
				info += "S"
			}
		}
		name := fmt.Sprintf("%d.M%dP1.popbench,S=%d,W=%d:2,%s", 1500000000+n, n, len(buf), len(buf), info)
		return os.WriteFile(filepath.Join(dir, "cur", name), buf, 0o644)
	})
	if err == nil && len(probs) > 0 {
		err = errors.New(probs[0].Error())
	}
	return n, err
}
