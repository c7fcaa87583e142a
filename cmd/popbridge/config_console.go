package main

import "net"

// ConsoleConfig is [console]: the local web console.
type ConsoleConfig struct {
	// Listen is where the console is served (loopback host:port).
	// Default "127.0.0.1:8143"; "" when the file says "off".
	Listen string `toml:"listen"`
}

// defaultConsole is the console's documented address. When serve finds
// the port taken and the file did not ask for it, it takes a free port
// instead (the URL it prints and opens says which).
const defaultConsole = "127.0.0.1:8143"

func (v *validator) console(c *ConsoleConfig) {
	v.listenAddr("console.listen", &c.Listen, defaultConsole, true)
	if c.Listen == "" {
		return
	}
	if host, _, err := net.SplitHostPort(c.Listen); err == nil && !isLoopbackHost(host) {
		v.errf("console.listen", "%q must be on a loopback address (127.0.0.1, ::1 or localhost): the console manages your mail and is for this computer only", c.Listen)
	}
}
