#!/bin/sh
# The version of this tree, as `leakwatch version` and the Debian package
# say it. VERSION holds the next release; a commit tagged vVERSION is that
# release, any other commit a snapshot before it: VERSION~gitTIME.HASH,
# which dpkg sorts below VERSION and in commit order, so snapshot packages
# upgrade one another and the release upgrades them all.
set -eu
cd "$(dirname "$0")/.."
v=$(cat VERSION)
if git rev-parse --verify -q HEAD >/dev/null 2>&1 &&
	[ "$(git describe --tags --exact-match 2>/dev/null)" != "v$v" ]; then
	t=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
	v="$v~git$t.$(git rev-parse --short=7 HEAD)"
fi
echo "$v"
