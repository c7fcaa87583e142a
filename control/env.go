package control

import (
	"os"
	"runtime"

	"github.com/popbridge/popbridge/discover"
)

// EnvFromOS says where this machine keeps mail: the user's home, and on
// Windows %APPDATA%, %LOCALAPPDATA% and the registry.
func EnvFromOS() discover.Env {
	home, _ := os.UserHomeDir()
	return discover.Env{
		GOOS:         runtime.GOOS,
		Home:         home,
		AppData:      os.Getenv("APPDATA"),
		LocalAppData: os.Getenv("LOCALAPPDATA"),
		Registry:     registryReader(),
	}
}
