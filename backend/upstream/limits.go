package upstream

// MaxConnections is the most connections the pool opens at once
// (watchers included); parallel uploads use one less, so a watcher fits.
func (p *Pool) MaxConnections() int { return p.opts.MaxConnections }
