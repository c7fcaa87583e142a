#!/usr/bin/env bash
# Builds the downloadable archives of popbridge: the one release script, run
# the same way on a developer's machine and in CI (scripts/test.sh builds one
# target per OS with it).
#
#   scripts/release.sh [-o DIR] [GOOS/GOARCH ...]
#
# Without targets it builds all six: windows/amd64, windows/arm64 (.zip),
# darwin/arm64, darwin/amd64, linux/amd64, linux/arm64 (.tar.gz). Each archive
# holds a directory popbridge_<version>_<os>_<arch>/ with the binary, the
# README and config.example.toml; Windows archives have two binaries:
# popbridge.exe (the command line) and popbridgew.exe (the same program built
# for the Windows GUI subsystem, which opens no console window: the one to
# double-click, and the one autostart registers). DIR/SHA256SUMS lists the
# SHA-256 of every archive (check with `sha256sum -c SHA256SUMS`).
#
# The version comes from `git describe --tags --always --dirty` (override
# with $VERSION), the commit from git, and the date is the commit's time in
# UTC (so two builds of one commit are identical; override with $BUILD_DATE).
# Builds are static (CGO_ENABLED=0) and -trimpath.
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
while getopts "o:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	h)
		sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(windows/amd64 windows/arm64 darwin/arm64 darwin/amd64 linux/amd64 linux/arm64)
fi

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo "")}
date=${BUILD_DATE:-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
ldflags="-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date"

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sums=()
for t in "${targets[@]}"; do
	goos=${t%/*}
	goarch=${t#*/}
	case $goos/$goarch in
	windows/amd64 | windows/arm64 | darwin/arm64 | darwin/amd64 | linux/amd64 | linux/arm64) ;;
	*)
		echo "release.sh: unknown target $t (use GOOS/GOARCH, e.g. linux/amd64)" >&2
		exit 2
		;;
	esac
	name="popbridge_${version}_${goos}_${goarch}"
	dir="$work/$name"
	mkdir -p "$dir"
	echo "release.sh: $name"
	exe=""
	[ "$goos" = windows ] && exe=.exe
	CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$ldflags" -o "$dir/popbridge$exe" ./cmd/popbridge
	if [ "$goos" = windows ]; then
		CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -ldflags "$ldflags -H=windowsgui" -o "$dir/popbridgew.exe" ./cmd/popbridge
	fi
	cp README.md config.example.toml "$dir/"
	if [ "$goos" = windows ]; then
		archive="$name.zip"
		rm -f "$out/$archive"
		if command -v zip >/dev/null 2>&1; then
			(cd "$work" && zip -q -r -X "$out/$archive" "$name")
		else
			(cd "$work" && python3 -m zipfile -c "$out/$archive" "$name")
		fi
	else
		archive="$name.tar.gz"
		if tar --version 2>/dev/null | grep -q GNU; then
			tar -C "$work" --owner=0 --group=0 --numeric-owner --sort=name --mtime="$date" -czf "$out/$archive" "$name"
		else
			tar -C "$work" --uid 0 --gid 0 -czf "$out/$archive" "$name"
		fi
	fi
	sums+=("$archive")
done

cd "$out"
if command -v sha256sum >/dev/null 2>&1; then
	sha256sum "${sums[@]}" >SHA256SUMS
else
	shasum -a 256 "${sums[@]}" >SHA256SUMS
fi
echo "release.sh: wrote ${#sums[@]} archive(s) and SHA256SUMS to $out (version $version)"
