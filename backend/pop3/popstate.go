package pop3

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Popstate is what a Thunderbird popstate.dat says about the accounts in
// it: for each "host user" section, the state letter of each UIDL.
//
// The file (written by Thunderbird's nsPop3Protocol) looks like
//
//	# POP3 State File
//	# This is a generated file!  Do not edit.
//
//	*pop.example.com alice
//	k 000001a24e1b2a8c 1262304000
//	d 000001a34e1b2a8c 1262304001
//	b 000001a44e1b2a8c 1262304002
//
// k: downloaded and kept on the server; d: downloaded, to be deleted; b:
// too big, only the first lines downloaded; f: the user asked for the
// whole of a "b" message (not downloaded yet). The third column, when
// present, is when the message was received (unix seconds).
type Popstate map[popstateKey]map[string]byte

type popstateKey struct{ host, user string }

// ParsePopstate reads a popstate.dat. Unknown lines are skipped; entries
// before any "*host user" line are ignored (they belong to no account).
func ParsePopstate(r io.Reader) (Popstate, error) {
	ps := Popstate{}
	var cur map[string]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '*' {
			f := strings.Fields(s[1:])
			if len(f) == 0 {
				cur = nil
				continue
			}
			k := popstateKey{host: strings.ToLower(f[0])}
			if len(f) > 1 {
				k.user = f[1]
			}
			if ps[k] == nil {
				ps[k] = map[string]byte{}
			}
			cur = ps[k]
			continue
		}
		f := strings.Fields(s)
		if cur == nil || len(f) < 2 || len(f[0]) != 1 {
			continue
		}
		cur[f[1]] = f[0][0]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("popstate line %d: %w", line+1, err)
	}
	return ps, nil
}

// Known returns the UIDLs of host/user that the old client downloaded (k,
// d and b entries). Host compares case-insensitively, user exactly or, if
// no section matches exactly, case-insensitively.
func (ps Popstate) Known(host, user string) map[string]bool {
	host = strings.ToLower(host)
	sec, ok := ps[popstateKey{host, user}]
	if !ok {
		for k, v := range ps {
			if k.host == host && strings.EqualFold(k.user, user) {
				sec, ok = v, true
				break
			}
		}
	}
	out := map[string]bool{}
	if !ok {
		return out
	}
	for uidl, st := range sec {
		switch st {
		case 'k', 'd', 'b':
			out[uidl] = true
		}
	}
	return out
}

// readPopstates merges the known UIDLs for host/user from every file;
// unreadable files are reported through warn and otherwise skipped.
func readPopstates(files []string, host, user string, warn func(path string, err error)) map[string]bool {
	out := map[string]bool{}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			warn(p, err)
			continue
		}
		ps, err := ParsePopstate(f)
		f.Close()
		if err != nil {
			warn(p, err)
			continue
		}
		for u := range ps.Known(host, user) {
			out[u] = true
		}
	}
	return out
}
