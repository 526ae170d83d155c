#!/usr/bin/env bash
# Every test: unit tests (plain and under ASan/UBSan), then the real-kernel
# integration tests. Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
log=$(mktemp -d /tmp/leakwatch-tests.XXXXXX)
trap 'rm -rf "$log"' EXIT

# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)" per group
run_cmocka() {
	local name=$1
	shift
	local out="$log/$name.out" p f
	"$@" >"$out" 2>&1
	local rc=$?
	# one line per group: a binary may run several groups
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{n += $1} END {print n + 0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{n += $1} END {print n + 0}')
	p=${p:-0}
	f=${f:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crashed before its summary
	if [ "$f" -ne 0 ]; then cat "$out"; fi
	echo "unit $name: $p passed, $f failed"
	passed=$((passed + p))
	failed=$((failed + f))
}

for t in build/tests/test_*; do
	[ -x "$t" ] && run_cmocka "$(basename "$t")" "$t"
done

if make --no-print-directory asan >"$log/asan-build.out" 2>&1 || true; then
	for t in build/asan/tests/test_*; do
		[ -x "$t" ] && run_cmocka "asan-$(basename "$t")" "$t"
	done
fi
if ! ls build/asan/tests/test_* >/dev/null 2>&1; then
	cat "$log/asan-build.out"
	echo "unit asan: build failed"
	failed=$((failed + 1))
fi

# one-line checks: a command that must succeed, counted as one test
run_check() {
	local name=$1
	shift
	if "$@" >"$log/$name.out" 2>&1; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		tail -60 "$log/$name.out"
		echo "FAIL $name"
		failed=$((failed + 1))
	fi
}

# precision and recall per finding type on the labelled corpus (tests/corpus)
run_check corpus_self_test python3 tests/corpus/eval.py --self-test
run_check corpus_generated_files_match python3 tests/corpus/gen.py --check
run_check corpus_precision_recall python3 tests/corpus/eval.py
cat "$log/corpus_precision_recall.out" | sed -n '1,40p'

# libFuzzer targets (HTTP/1.1, HTTP/2, gzip, JSON), a short run of each
run_check fuzz_short_run make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
grep -E '^fuzz |Done|stat::' "$log/fuzz_short_run.out" | head -20

# integration tests print their own "N passed, N failed" last
python3 tests/integration/run.py "$@" 2>&1 | tee "$log/integration.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log/integration.out" | tail -1)
if [ -n "$line" ]; then
	passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
	failed=$((failed + $(echo "$line" | cut -d' ' -f3)))
else
	echo "integration: no summary line (runner crashed)"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
