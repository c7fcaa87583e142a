package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2025-03-04T05:06:07Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name                  string
		version, commit, date string
		bi                    *debug.BuildInfo
		want                  Info
	}{
		{"stamped by release.sh", "v1.2.3", "abc1234", "2025-01-02T03:04:05Z",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			Info{Version: "v1.2.3", Commit: "abc1234", Date: "2025-01-02T03:04:05Z", Go: "go1.26.0"}},
		{"go install @version", "dev", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.4.0"}},
			Info{Version: "v1.4.0", Go: "go1.26.0"}},
		{"go build in a checkout", "dev", "", "",
			&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			Info{Version: "dev", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2025-03-04T05:06:07Z", Dirty: true, Go: "go1.26.0"}},
		{"no build info", "", "", "", nil, Info{Version: "dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolve(tt.version, tt.commit, tt.date, "dev", tt.bi)
			got.OS, got.Arch = "", ""
			if tt.bi == nil {
				got.Go = ""
			}
			if got != tt.want {
				t.Errorf("resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v1.2.3", Commit: "0123456789abcdef", Date: "2025-01-02T03:04:05Z", Dirty: true, Go: "go1.26.0", OS: "linux", Arch: "amd64"}
	want := "popbridge v1.2.3 (commit 0123456789ab+dirty, built 2025-01-02T03:04:05Z, go1.26.0 linux/amd64)"
	if got := in.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	if got := (Info{Version: "dev", Go: "go1.26.0", OS: "darwin", Arch: "arm64"}).String(); !strings.HasPrefix(got, "popbridge dev (go1.26.0 darwin/arm64") {
		t.Errorf("String without commit = %q", got)
	}
}
