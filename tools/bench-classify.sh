#!/usr/bin/env bash
# Classifier benchmark (issue 4). Measured, never asserted:
#  1. leakwatch's classifier (one Vectorscan database + validators, the
#     built-in rules) on 16 KiB JSON request bodies, one core, two mixes
#     (typical: prose + one leaking ticket/log; dense: the labelled corpus
#     back to back), see tools/bench/classify_bench.c;
#  2. the same bodies through prompt extraction + classifier;
#  3. reference: ripgrep, one thread, with the same rule patterns over the
#     typical bodies (a regex scan alone: no validation, no decoding);
# -> MB/s and the ratio leakwatch / ripgrep.
# Env: SECONDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${SECONDS:-3}
. tools/bench/common.sh

taskset -c 0 build/classify_bench /usr/share/common-licenses tests/corpus/bodies "$tmp" "$SECONDS_" |
	tee "$tmp/ours.txt"
ours=$(sed -n 's/^typical: classify on raw JSON bodies: \([0-9.]*\) MB\/s.*/\1/p' "$tmp/ours.txt")
size=$(stat -c %s "$tmp/bodies.txt")

# ripgrep cannot take every Vectorscan construct: keep the patterns it accepts
: >"$tmp/rg-patterns.txt"
skipped=0
while IFS= read -r pat; do
	if printf 'x\n' | rg -q --regexp "$pat" - 2>/dev/null || [ $? -eq 1 ]; then
		printf '%s\n' "$pat" >>"$tmp/rg-patterns.txt"
	else
		skipped=$((skipped + 1))
	fi
done <"$tmp/patterns.txt"
cat "$tmp/bodies.txt" >/dev/null # page cache
best=
for _ in 1 2 3; do
	s=$(date +%s.%N)
	taskset -c 0 rg --threads 1 --no-mmap -c -f "$tmp/rg-patterns.txt" "$tmp/bodies.txt" >/dev/null || true
	e=$(date +%s.%N)
	el=$(awk -v s="$s" -v e="$e" 'BEGIN{print e - s}')
	if [ -z "$best" ] || awk -v a="$el" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$el; fi
done
echo "ripgrep $(rg --version 2>/dev/null | sed -n 1p | cut -d' ' -f2), $(wc -l <"$tmp/rg-patterns.txt") patterns" \
	"($skipped it cannot parse), one thread: $(awk -v n="$size" -v t="$best" 'BEGIN{printf "%.1f", n / t / 1e6}') MB/s"
awk -v o="$ours" -v n="$size" -v t="$best" 'BEGIN{
	printf "ratio leakwatch classifier / ripgrep (typical bodies): %.2f\n", o / (n / t / 1e6) }'
