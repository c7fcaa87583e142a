package desktop

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// OpenBrowser opens url with $BROWSER when set (a list of commands
// separated by ":", "%s" standing for the URL, as Python's webbrowser and
// xdg-open read it), else the system's way: open (macOS), the URL
// protocol handler (Windows), xdg-open (elsewhere). It does not wait for
// the browser.
func OpenBrowser(url string) error {
	if b := os.Getenv("BROWSER"); b != "" {
		var errs []error
		for _, c := range strings.Split(b, string(os.PathListSeparator)) {
			fields := strings.Fields(c)
			if len(fields) == 0 {
				continue
			}
			substituted := false
			for i, f := range fields {
				if strings.Contains(f, "%s") {
					fields[i] = strings.ReplaceAll(f, "%s", url)
					substituted = true
				}
			}
			if !substituted {
				fields = append(fields, url)
			}
			if err := start(fields[0], fields[1:]...); err != nil {
				errs = append(errs, err)
				continue
			}
			return nil
		}
		return errors.Join(errs...)
	}
	switch runtime.GOOS {
	case "darwin":
		return start("open", url)
	case "windows":
		return start("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		return start("xdg-open", url)
	}
}

func start(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
