package certs

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
)

// LocalHosts lists the names and addresses this machine is reached at,
// for the server certificate: localhost, 127.0.0.1, ::1, the host name
// (and host.local, the name phones resolve by Bonjour/mDNS, when the host
// name has no dot), and the IPv4 and unique-local IPv6 addresses of the
// network interfaces that are up. Loopback and link-local addresses of
// interfaces, and global IPv6 addresses (privacy addresses rotate), are
// left out.
func LocalHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h := hostName(); h != "" {
		lh := strings.ToLower(h)
		hosts = append(hosts, lh)
		if short, ok := strings.CutSuffix(lh, ".local"); ok {
			hosts = append(hosts, short)
		} else if !strings.Contains(lh, ".") {
			hosts = append(hosts, lh+".local")
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return hosts
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if s := lanAddr(ipn.IP); s != "" && !slices.Contains(hosts, s) {
				hosts = append(hosts, s)
			}
		}
	}
	return hosts
}

// lanAddr returns ip as text if it belongs in the certificate.
func lanAddr(ip net.IP) string {
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	if ip.IsPrivate() { // fc00::/7
		return ip.String()
	}
	return ""
}

// hostName is the machine's host name if a certificate can carry it
// (ASCII letters, digits, '-', '.', '_'), else "".
func hostName() string {
	h, err := os.Hostname()
	if err != nil || checkHost(h) != nil || net.ParseIP(h) != nil || strings.EqualFold(h, "localhost") {
		return ""
	}
	return h
}

// normHost lower-cases names and writes addresses canonically.
func normHost(h string) string {
	h = strings.TrimSpace(h)
	if ip := net.ParseIP(h); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			return v4.String()
		}
		return ip.String()
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// checkHost accepts an IP address or a DNS name a certificate can carry.
func checkHost(h string) error {
	h = strings.TrimSpace(h)
	if net.ParseIP(h) != nil {
		return nil
	}
	h = strings.TrimSuffix(h, ".")
	bad := func(why string) error {
		return fmt.Errorf("%q is not a host name or IP address for the TLS certificate: %s", h, why)
	}
	if h == "" {
		return bad("empty")
	}
	if len(h) > 253 {
		return bad("longer than 253 characters")
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return bad("empty label")
		}
		if len(label) > 63 {
			return bad("a label is longer than 63 characters")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return bad("a label starts or ends with '-'")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return bad("use letters a-z, digits, '-' and '.' (write international names in punycode, xn--…)")
			}
		}
	}
	return nil
}
