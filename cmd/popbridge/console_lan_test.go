package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/popbridge/popbridge/control"
)

// TestConsoleLANSwitch: the Devices switch moves the IMAP listeners to all
// addresses and back, through the config file, and the devices' addresses
// follow.
func TestConsoleLANSwitch(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := writeConfig(t, dir, port, map[string]string{}, "")
	appendUpstream(t, cfgPath, "[console]\nlisten = \"127.0.0.1:0\"\n")
	_, _, cfg := runTestShell(t, cfgPath)
	info, err := control.ReadInfo(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	c := control.NewClient(info.Addr, info.Token)
	ctx := context.Background()
	d, err := c.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.LAN || len(d.Hosts) != 1 || d.Hosts[0] != "127.0.0.1" || d.User != "me" {
		t.Fatalf("before: %+v", d)
	}
	on := true
	set, err := c.SaveSettings(ctx, control.SettingsChange{LAN: &on})
	if err != nil {
		t.Fatal(err)
	}
	if !set.Listen.LAN || !strings.HasPrefix(set.Listen.IMAP, "0.0.0.0:") {
		t.Fatalf("settings after the switch: %+v", set.Listen)
	}
	d, err = c.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// (Go reports a listener on 0.0.0.0 as [::] where it listens on both.)
	if !d.LAN || d.Hosts[len(d.Hosts)-1] != "127.0.0.1" || len(d.Listeners) != 1 ||
		!strings.HasPrefix(d.Listeners[0].Addr, "0.0.0.0:") && !strings.HasPrefix(d.Listeners[0].Addr, "[::]:") {
		t.Fatalf("devices on the network: %+v", d)
	}
	for _, h := range d.Hosts[:len(d.Hosts)-1] {
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			t.Errorf("a loopback address among the network addresses: %v", d.Hosts)
		}
	}
	reloaded, _, err := LoadConfig(filepath.Clean(cfgPath))
	if err != nil || !strings.HasPrefix(reloaded.Listen.IMAP, "0.0.0.0:") || len(reloaded.Users) != 1 {
		t.Fatalf("config after the switch: %v %v", reloaded, err)
	}
	off := false
	if _, err := c.SaveSettings(ctx, control.SettingsChange{LAN: &off}); err != nil {
		t.Fatal(err)
	}
	if d, err = c.Devices(ctx); err != nil || d.LAN || !strings.HasPrefix(d.Listeners[0].Addr, "127.0.0.1:") {
		t.Fatalf("devices back on this computer: %+v %v", d, err)
	}
}
