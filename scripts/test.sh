#!/usr/bin/env bash
# The project's test command (see README). It installs what the tests need
# on a fresh Debian/Ubuntu machine (a private Dovecot for IMAP/POP3, what a
# private Courier-IMAP and Cyrus IMAP need, the third-party client mbsync,
# python3 for imaplib, readpst to cross-check PST conversion), checks
# formatting, vet and the Windows/macOS builds, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v readpst >/dev/null 2>&1 || need+=(pst-utils)
# Courier-IMAP and Cyrus IMAP for the conformance tests. Their IMAP packages
# (courier-imap, cyrus-imapd) conflict with dovecot-imapd and are never
# installed: internal/testenv fetches them with `apt-get download` and
# unpacks them privately (see its package doc). What they need is installed
# here; unshare (util-linux) gives each Courier a private mount namespace.
[ -x /usr/sbin/couriertcpd ] && [ -x /usr/sbin/makeuserdb ] && [ -x /usr/lib/courier/courier-authlib/authdaemond ] ||
	need+=(courier-base courier-authdaemon courier-authlib-userdb)
[ -x /usr/lib/cyrus/bin/master ] || need+=(cyrus-common)
command -v saslpasswd2 >/dev/null 2>&1 || [ -x /usr/sbin/saslpasswd2 ] || need+=(sasl2-bin)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
# apt-get download needs the package lists.
apt_lists=yes
apt-cache show courier-imap cyrus-imapd >/dev/null 2>&1 || apt_lists=no
if [ ${#need[@]} -gt 0 ] || [ "$apt_lists" = no ]; then
	echo "test.sh: installing ${need[*]:-nothing} (apt lists: $apt_lists)"
	SUDO=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
			echo "test.sh: missing ${need[*]:-apt package lists}: run 'apt-get update && apt-get install -y ${need[*]:-}' as root" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	if [ ${#need[@]} -gt 0 ]; then
		$SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
	fi
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
