// Package buildinfo says which popbridge this is: the version, commit and
// build date stamped by scripts/release.sh (-ldflags -X), or, for a binary
// built by `go install …/cmd/popbridge@latest` or `go build` in a checkout,
// what the Go toolchain recorded (the module version, vcs.revision and
// vcs.time from runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Info describes one build.
type Info struct {
	Version string `json:"version"`          // "v1.2.3", "v1.2.3-4-gabcdef0", or "dev"
	Commit  string `json:"commit,omitempty"` // full or short hash; "" when unknown
	Date    string `json:"date,omitempty"`   // RFC 3339 UTC; "" when unknown
	Dirty   bool   `json:"dirty,omitempty"`  // built from a modified work tree
	Go      string `json:"go"`               // toolchain, e.g. "go1.26.0"
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// Resolve returns the build's Info. version, commit and date are the values
// stamped at link time; empty ones (or the development placeholder dev)
// are filled in from the Go build information when it has them.
func Resolve(version, commit, date, dev string) Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, dev, bi)
}

func resolve(version, commit, date, dev string, bi *debug.BuildInfo) Info {
	in := Info{Version: version, Commit: commit, Date: date, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi == nil {
		if in.Version == "" {
			in.Version = dev
		}
		return in
	}
	if bi.GoVersion != "" {
		in.Go = bi.GoVersion
	}
	stamped := version != "" && version != dev
	if !stamped {
		// `go install module/cmd/popbridge@v1.2.3` records the module
		// version; a build in a checkout records "(devel)" or a pseudo
		// version computed from VCS information.
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		} else if in.Version == "" {
			in.Version = dev
		}
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if in.Commit == "" {
				in.Commit = s.Value
			}
		case "vcs.time":
			if in.Date == "" {
				in.Date = s.Value
			}
		case "vcs.modified":
			if !stamped {
				in.Dirty = s.Value == "true"
			}
		}
	}
	return in
}

// String is what `popbridge version` prints on its first line:
// "popbridge v1.2.3 (commit abcdef012345, built 2025-01-02T03:04:05Z, go1.26.0 linux/amd64)".
func (in Info) String() string {
	var parts []string
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if in.Dirty {
			c += "+dirty"
		}
		parts = append(parts, "commit "+c)
	}
	if in.Date != "" {
		parts = append(parts, "built "+in.Date)
	}
	parts = append(parts, fmt.Sprintf("%s %s/%s", in.Go, in.OS, in.Arch))
	return fmt.Sprintf("popbridge %s (%s)", in.Version, strings.Join(parts, ", "))
}
