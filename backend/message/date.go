package message

import (
	"strconv"
	"strings"
	"time"
)

var epoch = time.Unix(0, 0).UTC()

// ClampDate returns t, or 1970-01-01T00:00:00Z when t is zero or before it:
// Apple Mail crashes on an INTERNALDATE before 1970.
func ClampDate(t time.Time) time.Time {
	if t.IsZero() || t.Before(epoch) {
		return epoch
	}
	return t
}

// InternalDate picks a message's INTERNALDATE: fromLine if non-zero (the
// mbox "From " line's date); else the date after the last ';' of the first
// (topmost, i.e. last added) Received: field; else the Date: field; else the
// zero time. source says which: "from-line", "received", "date" or "".
func InternalDate(header []byte, fromLine time.Time) (t time.Time, source string) {
	defer func() {
		if recover() != nil {
			t, source = time.Time{}, ""
		}
	}()
	if !fromLine.IsZero() {
		return fromLine, "from-line"
	}
	if v, ok := rawField(header, "Received"); ok {
		s := unfold(v)
		if i := strings.LastIndexByte(s, ';'); i >= 0 {
			if t, ok := parseDate(s[i+1:]); ok {
				return t, "received"
			}
		}
	}
	if t, ok := parseDate(HeaderValue(header, "Date")); ok {
		return t, "date"
	}
	return time.Time{}, ""
}

// ParseDate parses an RFC 5322 date-time leniently: obsolete forms, missing
// seconds or day of week, two- and three-digit years, named zones (GMT,
// EST, JST...), trailing comments, asctime order, ISO 8601 dates, dashes
// ("13-Feb-1997"). A date without a zone is taken as UTC. The result keeps
// the zone offset of the text.
func ParseDate(s string) (time.Time, bool) {
	defer func() { _ = recover() }()
	return parseDate(s)
}

var fullMonths = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}

var dayNames = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// zoneNames maps zone abbreviations to offsets in minutes. RFC 822 zones
// first; the rest are common in real mail. Ambiguous names take the RFC 822
// (US) meaning.
var zoneNames = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0,
	"est": -5 * 60, "edt": -4 * 60, "cst": -6 * 60, "cdt": -5 * 60,
	"mst": -7 * 60, "mdt": -6 * 60, "pst": -8 * 60, "pdt": -7 * 60,
	"akst": -9 * 60, "akdt": -8 * 60, "hst": -10 * 60, "ast": -4 * 60, "adt": -3 * 60,
	"nst": -(3*60 + 30), "ndt": -(2*60 + 30),
	"bst": 60, "ist": 5*60 + 30, "west": 60, "cet": 60, "cest": 2 * 60, "met": 60, "mest": 2 * 60,
	"mez": 60, "mesz": 2 * 60, "eet": 2 * 60, "eest": 3 * 60, "msk": 3 * 60, "msd": 4 * 60,
	"jst": 9 * 60, "kst": 9 * 60, "hkt": 8 * 60, "sgt": 8 * 60, "awst": 8 * 60, "wib": 7 * 60,
	"acst": 9*60 + 30, "aest": 10 * 60, "aedt": 11 * 60, "nzst": 12 * 60, "nzdt": 13 * 60,
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseOffset parses "+0900", "-07:00", "+9" (hours) into minutes.
func parseOffset(s string) (int, bool) {
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	d := strings.ReplaceAll(s[1:], ":", "")
	if !allDigits(d) {
		return 0, false
	}
	var h, m int
	switch len(d) {
	case 1, 2:
		h, _ = strconv.Atoi(d)
	case 3:
		h, _ = strconv.Atoi(d[:1])
		m, _ = strconv.Atoi(d[1:])
	case 4:
		h, _ = strconv.Atoi(d[:2])
		m, _ = strconv.Atoi(d[2:])
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return sign * (h*60 + m), true
}

func monthIndex(tok string) int {
	if len(tok) < 3 || len(tok) > 9 {
		return 0
	}
	for i, full := range fullMonths {
		if strings.HasPrefix(full, tok) {
			return i + 1
		}
	}
	return 0
}

func isDayName(tok string) bool {
	if len(tok) < 3 {
		return false
	}
	for _, d := range dayNames {
		if strings.HasPrefix(d, tok) {
			return true
		}
	}
	return false
}

type dateParts struct {
	year, month, day int
	yearDigits       int
	hour, min, sec   int
	nsec             int
	haveTime         bool
	zone             int
	haveZone         bool
	pm, am           bool
	nums             []string
	commentZones     []string
	isoDone          bool
}

func (p *dateParts) timeToken(tok string) bool {
	// hh:mm[:ss[.frac]] with an optional zone glued on.
	rest := ""
	if i := strings.IndexAny(tok, "+-Zz"); i > 0 {
		tok, rest = tok[:i], tok[i:]
	}
	fields := strings.Split(tok, ":")
	if len(fields) < 2 || len(fields) > 3 {
		return false
	}
	var vals [3]int
	for i, f := range fields {
		if i == 2 {
			if dot := strings.IndexAny(f, ".,"); dot >= 0 {
				frac := f[dot+1:]
				f = f[:dot]
				if allDigits(frac) {
					for len(frac) < 9 {
						frac += "0"
					}
					p.nsec, _ = strconv.Atoi(frac[:9])
				}
			}
		}
		if !allDigits(f) || len(f) > 2 {
			return false
		}
		vals[i], _ = strconv.Atoi(f)
	}
	p.hour, p.min, p.sec = vals[0], vals[1], vals[2]
	p.haveTime = true
	if rest != "" {
		if rest == "Z" || rest == "z" {
			p.zone, p.haveZone = 0, true
		} else if off, ok := parseOffset(rest); ok {
			p.zone, p.haveZone = off, true
		}
	}
	return true
}

func (p *dateParts) token(tok string) {
	tok = strings.Trim(tok, ".")
	if tok == "" {
		return
	}
	low := lowerASCII(tok)
	if p.isoDate(tok) {
		return
	}
	switch {
	case strings.IndexByte(tok, ':') > 0 && tok[0] >= '0' && tok[0] <= '9':
		p.timeToken(tok)
	case tok[0] == '+' || (tok[0] == '-' && len(tok) > 1):
		if off, ok := parseOffset(tok); ok && !p.haveZone {
			p.zone, p.haveZone = off, true
		}
	case tok[0] >= '0' && tok[0] <= '9':
		if allDigits(tok) {
			p.nums = append(p.nums, tok)
			return
		}
		// "13-Feb-1997", "1997/02/13"...
		if strings.ContainsAny(tok, "-/") {
			for _, sub := range strings.FieldsFunc(tok, func(r rune) bool { return r == '-' || r == '/' }) {
				p.token(sub)
			}
			return
		}
		// "10am"...
		n := strings.TrimRight(tok, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
		if allDigits(n) {
			p.nums = append(p.nums, n)
			p.token(tok[len(n):])
		}
	default:
		if m := monthIndex(low); m != 0 && p.month == 0 {
			p.month = m
			return
		}
		if isDayName(low) {
			return
		}
		if low == "am" {
			p.am = true
			return
		}
		if low == "pm" {
			p.pm = true
			return
		}
		if off, ok := zoneNames[low]; ok {
			if !p.haveZone {
				p.zone, p.haveZone = off, true
			}
			return
		}
		if len(low) == 1 && low[0] >= 'a' && low[0] <= 'z' && low != "j" {
			// Military zones: RFC 5322 4.3 says treat as -0000.
			if !p.haveZone {
				p.zone, p.haveZone = 0, true
			}
			return
		}
		// "GMT+0900", "UTC-5".
		for _, pre := range []string{"gmt", "utc", "ut"} {
			if strings.HasPrefix(low, pre) && len(low) > len(pre) {
				if off, ok := parseOffset(low[len(pre):]); ok {
					if !p.haveZone {
						p.zone, p.haveZone = off, true
					}
					return
				}
			}
		}
	}
}

// isoDate handles "2006-01-02" and "2006-01-02T15:04:05Z07:00".
func (p *dateParts) isoDate(tok string) bool {
	if len(tok) < 10 || tok[4] != '-' || tok[7] != '-' || !allDigits(tok[:4]) || !allDigits(tok[5:7]) || !allDigits(tok[8:10]) {
		return false
	}
	p.year, _ = strconv.Atoi(tok[:4])
	p.yearDigits = 4
	p.month, _ = strconv.Atoi(tok[5:7])
	p.day, _ = strconv.Atoi(tok[8:10])
	p.isoDone = true
	rest := tok[10:]
	if rest != "" && (rest[0] == 'T' || rest[0] == 't') {
		p.timeToken(rest[1:])
	}
	return true
}

func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	var p dateParts
	// Comments may carry a zone name: "(JST)".
	if strings.IndexByte(s, '(') >= 0 {
		rest := s
		for {
			i := strings.IndexByte(rest, '(')
			if i < 0 {
				break
			}
			j := strings.IndexByte(rest[i:], ')')
			if j < 0 {
				p.commentZones = append(p.commentZones, strings.TrimSpace(rest[i+1:]))
				break
			}
			p.commentZones = append(p.commentZones, strings.TrimSpace(rest[i+1:i+j]))
			rest = rest[i+j:]
		}
		s = stripComments(s)
		if i := strings.IndexByte(s, '('); i >= 0 { // unclosed comment
			s = s[:i]
		}
	}
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == '\r' || r == '\n'
	}) {
		p.token(tok)
	}
	if !p.isoDone {
		if p.month == 0 {
			return time.Time{}, false
		}
		for _, n := range p.nums {
			v, _ := strconv.Atoi(n)
			switch {
			case (len(n) >= 3 || v > 31) && p.yearDigits == 0:
				p.year, p.yearDigits = v, len(n)
			case p.day == 0 && len(n) <= 2:
				p.day = v
			case p.yearDigits == 0:
				p.year, p.yearDigits = v, len(n)
			}
		}
		if p.day == 0 || p.yearDigits == 0 {
			return time.Time{}, false
		}
		switch {
		case p.yearDigits <= 2 && p.year < 50:
			p.year += 2000
		case p.yearDigits <= 2:
			p.year += 1900
		case p.yearDigits == 3:
			p.year += 1900
		}
	}
	if p.month < 1 || p.month > 12 || p.day < 1 || p.year < 1 || p.year > 9999 {
		return time.Time{}, false
	}
	if p.day > daysIn(time.Month(p.month), p.year) {
		return time.Time{}, false
	}
	if p.pm && p.hour < 12 {
		p.hour += 12
	} else if p.am && p.hour == 12 {
		p.hour = 0
	}
	if p.hour > 23 || p.min > 59 || p.sec > 60 {
		return time.Time{}, false
	}
	if p.sec == 60 {
		p.sec = 59
	}
	if !p.haveZone {
		for _, c := range p.commentZones {
			if off, ok := zoneNames[lowerASCII(c)]; ok {
				p.zone, p.haveZone = off, true
				break
			}
		}
	}
	loc := time.UTC
	if p.haveZone {
		loc = fixedZone(p.zone * 60)
	}
	return time.Date(p.year, time.Month(p.month), p.day, p.hour, p.min, p.sec, p.nsec, loc), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// fixedZone returns an unnamed fixed zone. Go caches whole-hour zones, so
// equal offsets mostly share one *Location.
func fixedZone(offset int) *time.Location {
	return time.FixedZone("", offset)
}
