#!/usr/bin/env bash
# Regenerate the per-arch vmlinux.h headers used by the BPF programs.
# See vmlinux/README.md. Dependencies: bpftool, python3, dpkg-deb, gzip, apt-get.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=$(basename "$0")

usage() {
	cat <<EOF
Usage:
  $PROG                 regenerate the header for the running arch from
                        /sys/kernel/btf/vmlinux (x86_64 -> x86, aarch64 -> arm64)
  $PROG ARCH FILE       generate $SCRIPT_DIR/ARCH/vmlinux.h from FILE, which may be
                        a vmlinux ELF, a raw BTF blob, a kernel image .deb, or a
                        (gzip-compressed) kernel image (vmlinuz / arm64 Image)
  $PROG --fetch-arm64   download the current Debian 12 (bookworm) arm64 kernel
                        image package with apt and generate arm64/vmlinux.h
  $PROG -h | --help     show this help

ARCH is a directory name under $SCRIPT_DIR, e.g. x86 or arm64.
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

command -v bpftool >/dev/null || die "bpftool not found in PATH"

TMPDIRS=()
cleanup() {
	local d
	for d in "${TMPDIRS[@]+"${TMPDIRS[@]}"}"; do
		rm -rf -- "$d"
	done
}
trap cleanup EXIT

# mktmp: create a temp dir (removed on exit) and store its path in $TMP_OUT.
# Not used via $(...) so the registration survives (no subshell).
mktmp() {
	TMP_OUT=$(mktemp -d "${TMPDIR:-/tmp}/vmlinux-gen.XXXXXX")
	TMPDIRS+=("$TMP_OUT")
}

# bpftool_ok FILE: true if bpftool can parse FILE as BTF (raw blob or ELF with .BTF).
bpftool_ok() {
	bpftool btf dump file "$1" format raw >/dev/null 2>&1
}

# extract_btf IN OUTDIR: find raw BTF blobs in IN (decompressing gzip first if
# needed), validate each with bpftool, and print the path of the largest valid one.
extract_btf() {
	local in=$1 out=$2
	python3 - "$in" "$out" <<'PY'
import gzip, struct, sys, zlib

src, outdir = sys.argv[1], sys.argv[2]
data = open(src, "rb").read()

def gunzip_members(buf):
    """Yield decompressed payloads of gzip streams found in buf (whole file,
    or embedded e.g. in an EFI zboot / PE wrapper)."""
    if buf[:2] == b"\x1f\x8b":
        try:
            yield gzip.decompress(buf)
            return
        except Exception:
            pass
    pos = 0
    while True:
        pos = buf.find(b"\x1f\x8b\x08", pos)
        if pos < 0:
            return
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = d.decompress(buf[pos:])
            if len(out) > 1 << 20:
                yield out
        except zlib.error:
            pass
        pos += 3

# BTF header: u16 magic 0xeB9F, u8 version 1, u8 flags, u32 hdr_len (24),
# u32 type_off, type_len, str_off, str_len (offsets relative to end of header).
PATS = [("<", b"\x9f\xeb\x01\x00\x18\x00\x00\x00"),
        (">", b"\xeb\x9f\x01\x00\x00\x00\x00\x18")]

def scan(buf, tag, n):
    for end, pat in PATS:
        pos = 0
        while True:
            pos = buf.find(pat, pos)
            if pos < 0:
                break
            if pos + 24 <= len(buf):
                _, _, _, hl, toff, tlen, soff, slen = struct.unpack(
                    end + "HBBIIIII", buf[pos:pos + 24])
                total = hl + max(toff + tlen, soff + slen)
                if tlen and slen and pos + total <= len(buf):
                    path = "%s/cand-%s-%d.btf" % (outdir, tag, n)
                    with open(path, "wb") as f:
                        f.write(buf[pos:pos + total])
                    print(path)
                    n += 1
            pos += 1
    return n

n = scan(data, "raw", 0)
for i, payload in enumerate(gunzip_members(data)):
    n = scan(payload, "gz%d" % i, n)
PY
}

# find_btf FILE WORKDIR: print path to a file bpftool can read as vmlinux BTF.
find_btf() {
	local f=$1 work=$2 cand best="" best_size=0 size img
	if bpftool_ok "$f"; then
		echo "$f"
		return
	fi
	if dpkg-deb --info "$f" >/dev/null 2>&1; then
		log "unpacking Debian package $(basename "$f")"
		dpkg-deb -x "$f" "$work/deb"
		img=$(find "$work/deb/boot" -maxdepth 1 -type f \( -name 'vmlinuz-*' -o -name 'vmlinux-*' \) 2>/dev/null | sort | head -n1)
		[ -n "$img" ] || die "no /boot/vmlinuz-* or /boot/vmlinux-* in $f"
		log "kernel image: ${img#"$work/deb"}"
		find_btf "$img" "$work"
		return
	fi
	mkdir -p "$work/cand"
	while IFS= read -r cand; do
		if bpftool btf dump file "$cand" format c >/dev/null 2>&1; then
			size=$(stat -c %s "$cand")
			if [ "$size" -gt "$best_size" ]; then
				best=$cand
				best_size=$size
			fi
		fi
	done < <(extract_btf "$f" "$work/cand")
	[ -n "$best" ] || die "no valid BTF blob found in $f"
	log "extracted BTF blob ($best_size bytes)"
	echo "$best"
}

# generate ARCH FILE
generate() {
	local arch=$1 src=$2 work btf outdir out
	[[ $arch =~ ^[A-Za-z0-9_]+$ ]] || die "invalid ARCH '$arch'"
	[ -r "$src" ] || die "cannot read '$src'"
	mktmp
	work=$TMP_OUT
	btf=$(find_btf "$src" "$work")
	outdir="$SCRIPT_DIR/$arch"
	out="$outdir/vmlinux.h"
	mkdir -p "$outdir"
	bpftool btf dump file "$btf" format c >"$work/vmlinux.h"
	grep -q 'struct task_struct {' "$work/vmlinux.h" ||
		die "generated header lacks struct task_struct; '$src' is not vmlinux BTF?"
	mv -f -- "$work/vmlinux.h" "$out"
	chmod 644 "$out"
	log "wrote $out ($(wc -l <"$out") lines)"
}

fetch_arm64() {
	local work lists cache meta pkg deb
	command -v apt-get >/dev/null || die "apt-get not found"
	command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
	mktmp
	work=$TMP_OUT
	chmod 755 "$work"
	lists=$work/lists
	cache=$work/cache
	mkdir -p "$lists/partial" "$cache/archives/partial"
	# Private apt state: arm64 package lists go to a temp dir, so the host's
	# dpkg architectures and /var/lib/apt/lists are never modified.
	local -a apt_opts=(
		-o "Dir::State::Lists=$lists"
		-o "Dir::Cache=$cache"
		-o "Dir::State::status=/dev/null"
		-o "APT::Architecture=arm64"
		-o "APT::Architectures::=arm64"
		-o "APT::Sandbox::User=root"
	)
	log "fetching arm64 package lists (private apt state in $work)"
	apt-get "${apt_opts[@]}" -qq update >&2
	meta=linux-image-arm64
	pkg=$(apt-cache "${apt_opts[@]}" depends "$meta" |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*-arm64\)$/\1/p' | head -n1)
	[ -n "$pkg" ] || die "could not resolve $meta to a kernel image package"
	if apt-cache "${apt_opts[@]}" show "$pkg-unsigned" >/dev/null 2>&1; then
		pkg=$pkg-unsigned
	fi
	log "downloading $pkg $(apt-cache "${apt_opts[@]}" policy "$pkg" | sed -n 's/^ *Candidate: //p')"
	(cd "$work" && apt-get "${apt_opts[@]}" -qq download "$pkg:arm64" >&2)
	deb=$(find "$work" -maxdepth 1 -name "${pkg}_*_arm64.deb" | head -n1)
	[ -n "$deb" ] || die "download of $pkg failed"
	generate arm64 "$deb"
	log "source: $(basename "$deb")"
}

case "${1:-}" in
-h | --help)
	usage
	exit 0
	;;
--fetch-arm64)
	[ $# -eq 1 ] || { usage >&2; exit 2; }
	fetch_arm64
	;;
"")
	[ $# -eq 0 ] || { usage >&2; exit 2; }
	case "$(uname -m)" in
	x86_64) arch=x86 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) die "unsupported machine '$(uname -m)'" ;;
	esac
	[ -r /sys/kernel/btf/vmlinux ] || die "/sys/kernel/btf/vmlinux not readable (kernel without CONFIG_DEBUG_INFO_BTF?)"
	generate "$arch" /sys/kernel/btf/vmlinux
	log "source: running kernel $(uname -r)"
	;;
-*)
	usage >&2
	exit 2
	;;
*)
	[ $# -eq 2 ] || { usage >&2; exit 2; }
	generate "$1" "$2"
	;;
esac
