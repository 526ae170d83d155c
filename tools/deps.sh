#!/usr/bin/env bash
# Install every build and test dependency on Debian 12. Idempotent: installs
# only what is missing, and refreshes the package lists only then.
set -euo pipefail

pkgs=(
	# build
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libyaml-dev pkg-config
	libvectorscan-dev libnghttp2-dev libjansson-dev libsqlite3-dev libssl-dev libcapstone-dev
	# make deb: dpkg-shlibdeps
	dpkg-dev
	# tests
	libcmocka-dev curl openssl ca-certificates python3 iproute2 procps psmisc dnsmasq-base
	# tests: one client per TLS stack (GnuTLS, NSS, Go, BoringSSL, a JVM)
	wget gnutls-bin libnss3-tools golang-go android-libboringssl-dev default-jdk-headless
	# tests of the package and the unit (test_install.py)
	lintian man-db systemd
	# benchmarks: the classifier's reference run
	ripgrep
)
# node and npm: keep whatever provides them (Debian's or another repository's
# nodejs, which bundles npm); install Debian's only when absent.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The node test client uses the official openai SDK, pinned by the lock file.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/tests/node/package-lock.json" ] &&
	{ [ ! -d "$here/tests/node/node_modules" ] ||
		[ "$here/tests/node/package-lock.json" -nt "$here/tests/node/node_modules" ]; }; then
	echo "deps: npm ci in tests/node"
	(cd "$here/tests/node" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
fi
