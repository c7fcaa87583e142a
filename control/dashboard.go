package control

import (
	"context"
	"sort"
	"strings"
	"time"
)

// Dashboard implements API. It is cheap: the folder counts are maintained
// by the backend (Account.FolderCounts redoes only what changed), the
// quota is cached for a few minutes and refreshed in the background (an
// event says when it arrived), everything else is in memory.
func (s *Service) Dashboard(ctx context.Context) (*Dashboard, error) {
	start := time.Now()
	s.mu.Lock()
	rt, startErr := s.rt, s.startErr
	s.mu.Unlock()
	d := &Dashboard{Version: s.opts.Version, Folders: []FolderRow{}, Clients: s.clients.list(), Problems: []Problem{}}
	switch {
	case rt != nil:
		d.State = "running"
	case startErr != nil:
		d.State = "stopped"
		d.StartError = startErr.Error()
		d.Problems = append(d.Problems, Problem{Kind: "start", Detail: startErr.Error()})
	default:
		d.State = "starting"
	}
	if set, err := s.settings(); err == nil {
		d.Configured = set.Configured
	}
	if rt != nil {
		counts, err := rt.Account.FolderCounts()
		if err != nil {
			return nil, err
		}
		prefix := rt.Account.Prefix()
		for _, c := range counts {
			if c.Remote {
				if !c.NoSelect {
					d.ServerFolders++
				}
				continue
			}
			if c.NoSelect || !(c.Name == prefix || strings.HasPrefix(c.Name, prefix+"/")) {
				continue
			}
			row := FolderRow{Name: c.Name, Source: c.Source, Messages: c.Messages, Bytes: c.Bytes, OnServer: c.OnServer,
				ToGo: c.ToGo, ToGoBytes: c.ToGoBytes, Missing: c.Missing}
			d.Folders = append(d.Folders, row)
			d.Totals.Messages += row.Messages
			d.Totals.Bytes += row.Bytes
			d.Totals.OnServer += row.OnServer
			d.Totals.ToGo += row.ToGo
			d.Totals.ToGoBytes += row.ToGoBytes
		}
		d.Indexed = rt.Account.LastIndexed()
		if rt.Upstream != "" {
			d.Upstream = rt.Upstream
			q, fresh := s.quota.cached()
			d.Quota = q
			if !fresh {
				s.quota.refresh(rt, func() { s.hub.publish(Event{Type: "dashboard"}) })
			}
			if q != nil && q.Error != "" {
				d.Problems = append(d.Problems, Problem{Kind: "upstream", Params: map[string]string{"host": rt.Upstream}, Detail: q.Error, At: q.Checked})
			}
		}
		if rt.POP != nil {
			hosts := rt.POP.Hosts()
			for _, st := range rt.POP.Status() {
				d.POP3 = append(d.POP3, POPRow{AccountStatus: st, Host: hosts[st.Name]})
				if st.LastError != "" && (st.LastSuccess.IsZero() || st.LastErrorAt.After(st.LastSuccess)) {
					d.Problems = append(d.Problems, Problem{Kind: "pop3", Params: map[string]string{"account": st.Name}, Detail: st.LastError, At: st.LastErrorAt})
				}
			}
		}
		for _, p := range rt.Account.Problems() {
			kind := "archive"
			if isLockedText(p) {
				kind = "archive-locked"
			}
			d.Problems = append(d.Problems, Problem{Kind: kind, Detail: p})
		}
	}
	if s.opts.Problems != nil {
		d.Problems = append(d.Problems, s.opts.Problems.list()...)
	}
	d.Migration = s.mig.state()
	d.Verify = s.ver.summary()
	d.Elapsed = time.Since(start)
	return d, nil
}

// settings returns the Host's settings (errNoSettings without a Host).
func (s *Service) settings() (*Settings, error) {
	if s.opts.Host == nil {
		return nil, errNoSettings
	}
	return s.opts.Host.Settings()
}

func sortClients(rows []ClientRow) {
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].Since.Equal(rows[j].Since) {
			return rows[i].Since.Before(rows[j].Since)
		}
		return rows[i].Remote < rows[j].Remote
	})
}
