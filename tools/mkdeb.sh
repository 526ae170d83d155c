#!/usr/bin/env bash
# Turn a `make install DESTDIR=... PREFIX=/usr` tree into a Debian binary
# package with dpkg-deb: no source package, no debhelper, no root.
#
# usage: tools/mkdeb.sh STAGE VERSION OUTDIR
#   STAGE must be .../debian/leakwatch: dpkg-shlibdeps finds the package's
#   own files by that layout. Prints the path of the .deb.
set -euo pipefail

stage=$1 version=$2 outdir=$3
here=$(cd "$(dirname "$0")/.." && pwd)
pkgdir="$here/deploy/debian"
case "$stage" in
*/debian/leakwatch) ;;
*) echo "mkdeb: STAGE must end in debian/leakwatch: $stage" >&2 && exit 2 ;;
esac
work=$(cd "$stage/../.." && pwd)
arch=$(dpkg --print-architecture)
deb="$outdir/leakwatch_${version}_${arch}.deb"
doc="$stage/usr/share/doc/leakwatch"
# one timestamp for the changelog and every file, so two builds of one
# commit give the same package
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || date +%s)}

# what dh_strip and dh_compress would do
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	"$stage/usr/bin/leakwatch"
gzip -9nf "$stage/usr/share/man/man8/leakwatch.8"
# postinst creates it with its mode; shipping it would make dpkg own the
# alert store's directory
rmdir "$stage/var/lib/leakwatch" "$stage/var/lib" "$stage/var"

install -m 0644 "$pkgdir/copyright" "$doc/copyright"
{
	echo "leakwatch ($version) unstable; urgency=medium"
	echo
	echo "  * Built from commit $(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)."
	echo
	echo " -- leakwatch developers <dev@leakwatch.invalid>  $(date -u -R -d "@$epoch")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

ctl="$stage/DEBIAN"
mkdir -p "$ctl"
for s in postinst prerm postrm; do
	install -m 0755 "$pkgdir/$s" "$ctl/$s"
done
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$ctl/conffiles"

# Depends from the libraries the binary really links
mkdir -p "$work/debian"
: >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e"debian/leakwatch/usr/bin/leakwatch" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2 && exit 1; }

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
	-e "s|@DEPENDS@|$depends|" "$pkgdir/control.in" >"$ctl/control"
# conffiles have their own hashes in dpkg's database (as dh_md5sums does)
(cd "$stage" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' |
	sort -z | xargs -0 md5sum) >"$ctl/md5sums"
chmod 0644 "$ctl/control" "$ctl/conffiles" "$ctl/md5sums"

find "$stage" -exec touch -h -d "@$epoch" {} +
mkdir -p "$outdir"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
