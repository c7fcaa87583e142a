#!/usr/bin/env bash
# The project's test command (see README). It installs what the tests need
# on a fresh Debian/Ubuntu machine (a private Dovecot for IMAP/POP3, what a
# private Courier-IMAP and Cyrus IMAP need, the third-party client mbsync,
# python3 for imaplib, readpst to cross-check PST conversion, undbx to
# cross-check Outlook Express .dbx reading, systemd-analyze to verify the
# autostart unit, a headless Chromium for the console), checks formatting,
# vet, the Windows/macOS builds and the release build (one archive per OS;
# the Linux binary must say its stamped version), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v readpst >/dev/null 2>&1 || need+=(pst-utils)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
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
command -v undbx >/dev/null 2>&1 || need+=(undbx)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
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
# -trimpath like the release build below, which then reuses these packages.
GOOS=windows GOARCH=amd64 go build -trimpath -o /dev/null ./cmd/...
GOOS=darwin GOARCH=arm64 go build -trimpath -o /dev/null ./cmd/...
echo "test.sh: release build (one target per OS)"
rel=$(mktemp -d)
trap 'rm -rf "$rel"' EXIT
VERSION=v0.0.0-test ./scripts/release.sh -o "$rel/dist" linux/amd64 windows/amd64 darwin/arm64
(cd "$rel/dist" && sha256sum -c --quiet SHA256SUMS)
for a in popbridge_v0.0.0-test_linux_amd64.tar.gz popbridge_v0.0.0-test_darwin_arm64.tar.gz; do
	tar -tzf "$rel/dist/$a" | sort | tr '\n' ' ' | grep -q "${a%.tar.gz}/README.md ${a%.tar.gz}/config.example.toml ${a%.tar.gz}/popbridge " ||
		{ echo "release: $a lacks popbridge, README.md or config.example.toml" >&2; exit 1; }
done
python3 -m zipfile -l "$rel/dist/popbridge_v0.0.0-test_windows_amd64.zip" | grep -q "popbridgew.exe" ||
	{ echo "release: the Windows zip lacks popbridgew.exe" >&2; exit 1; }
tar -xzf "$rel/dist/popbridge_v0.0.0-test_linux_amd64.tar.gz" -C "$rel"
got=$("$rel/popbridge_v0.0.0-test_linux_amd64/popbridge" version)
want="popbridge v0.0.0-test (commit $(git rev-parse HEAD | cut -c1-12), built "
case "$got" in
"$want"*) echo "test.sh: release binary says: $got" ;;
*)
	echo "release: 'popbridge version' printed '$got', want it to start with '$want'" >&2
	exit 1
	;;
esac
echo "test.sh: go test"
go test -count=1 -timeout 15m "$@" ./...
