#!/usr/bin/env bash
# The project's test command (see README). It installs what the tests need
# on a fresh Debian/Ubuntu machine (a private Dovecot for IMAP/POP3, the
# third-party client mbsync, python3 for imaplib, readpst to cross-check PST
# conversion, a headless Chromium for the console), checks formatting, vet
# and the Windows/macOS builds, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v readpst >/dev/null 2>&1 || need+=(pst-utils)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
	echo "test.sh: installing ${need[*]}"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
			echo "test.sh: missing ${need[*]}: run 'apt-get install -y ${need[*]}' as root" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

echo "test.sh: gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go') || true)
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
echo "test.sh: go vet"
go vet ./...
echo "test.sh: cross builds (windows, darwin)"
GOOS=windows GOARCH=amd64 go build -o /dev/null ./cmd/...
GOOS=darwin GOARCH=arm64 go build -o /dev/null ./cmd/...
echo "test.sh: go test"
go test -count=1 -timeout 15m "$@" ./...
