#!/usr/bin/env bash
# Content-blocking benchmarks (issue 5). Measured, never asserted.
# Keep-alive HTTPS POSTs of 16 KiB to "api.openai.com" (a TLS server on
# 127.0.0.1:443, SNI and Host a provider), alternating in the same run:
#   none     no agent
#   monitor  `leakwatch run`, default policy in monitor mode: the in-kernel
#            matcher is not walked
#   enforce  `leakwatch run`, default policy in enforce mode: every 16 KiB
#            write is walked by the matcher before it is encrypted
# Prints requests/s, the ratios enforce/none (the user's cost of
# enforcement, capture included) and enforce/monitor, and from the kernel's
# BPF run-time statistics the average time of the SSL_write_ex entry probe
# per call in both agent modes: the difference is what the matcher adds to
# one 16 KiB write.
# Env: POST_SECONDS (10), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
LW=$PWD/build/leakwatch
POST_SECONDS=${POST_SECONDS:-10}
ROUNDS=${ROUNDS:-2}
SINK_PORT=${SINK_PORT:-18462}

. tools/bench/common.sh

if ss -ltnH 'sport = :443' | grep -q .; then
	echo "bench-block: something already listens on port 443; skipped" >&2
	exit 0
fi
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
	-days 1 -subj /CN=api.openai.com -addext subjectAltName=DNS:api.openai.com 2>/dev/null
python3 tools/bench/tls_server.py --cert "$tmp/cert.pem" --key "$tmp/key.pem" \
	--http-port 443 --sink-port "$SINK_PORT" &
pids+=($!)
sleep 1

for mode in monitor enforce; do
	mkdir -p "$tmp/pol-$mode"
	cp policies/providers.yaml "$tmp/pol-$mode/"
	printf 'default: true\nmode: %s\nallow_providers: all\n' "$mode" >"$tmp/pol-$mode/default.yaml"
done

post_rate() {
	python3 tools/bench/tls_client.py post-loop --port 443 --sni api.openai.com \
		--ca "$tmp/cert.pem" --seconds "$POST_SECONDS" --body 16384 | awk '{print $6}'
}

# "run_time_ns run_cnt" of the SSL_write_ex entry probe (python's ssl calls it)
probe_stats() {
	bpftool prog show -j | python3 -c '
import json, sys
t = n = 0
for p in json.load(sys.stdin):
    if p.get("name", "").startswith("ssl_write_ex_en"):
        t += p.get("run_time_ns", 0); n += p.get("run_cnt", 0)
print(t, n)'
}

old_stats=$(sysctl -n kernel.bpf_stats_enabled)
restore() { sysctl -qw kernel.bpf_stats_enabled="$old_stats"; cleanup; }
trap restore EXIT INT TERM
sysctl -qw kernel.bpf_stats_enabled=1

echo "== keep-alive HTTPS POST loop to a provider, 16 KiB bodies, ${POST_SECONDS}s x ${ROUNDS} rounds"
declare -A sum=([none]=0 [monitor]=0 [enforce]=0) ns=([monitor]=0 [enforce]=0) cnt=([monitor]=0 [enforce]=0)
for r in $(seq "$ROUNDS"); do
	line="round $r:"
	for mode in none monitor enforce; do
		if [ "$mode" = none ]; then
			v=$(post_rate)
		else
			start_agent run --state-dir "$tmp/state" --policy "$tmp/pol-$mode" --stats-interval 0
			read -r t0 n0 < <(probe_stats)
			v=$(post_rate)
			read -r t1 n1 < <(probe_stats)
			stop_agent
			ns[$mode]=$((ns[$mode] + t1 - t0))
			cnt[$mode]=$((cnt[$mode] + n1 - n0))
			if [ "$mode" = enforce ]; then
				kb=$(grep -o '"kmatch_bytes":[0-9]*' "$tmp/agent.err" | tail -1 | cut -d: -f2)
				kw=$(grep -o '"kmatch_writes":[0-9]*' "$tmp/agent.err" | tail -1 | cut -d: -f2)
				kbytes=$((${kbytes:-0} + ${kb:-0}))
				kwrites=$((${kwrites:-0} + ${kw:-0}))
			fi
		fi
		sum[$mode]=$(awk -v x="${sum[$mode]}" -v y="$v" 'BEGIN{print x + y}')
		line="$line $mode ${v} req/s,"
	done
	echo "${line%,}"
done
echo "matcher walked ${kwrites:-0} writes, ${kbytes:-0} bytes (enforce runs)"
awk -v n="${sum[none]}" -v m="${sum[monitor]}" -v e="${sum[enforce]}" 'BEGIN{
	printf "throughput ratio enforce / no agent: %.3f\n", e / n
	printf "throughput ratio enforce / monitor:  %.3f\n", e / m
}'
# The writes of one request are its headers (~200 bytes) and its 16 KiB
# body: the matcher's time is spread over the bytes it walked.
awk -v mt="${ns[monitor]}" -v mc="${cnt[monitor]}" -v et="${ns[enforce]}" -v ec="${cnt[enforce]}" \
	-v kb="${kbytes:-0}" 'BEGIN{
	if (mc == 0 || ec == 0 || kb == 0) { print "no probe run-time statistics"; exit }
	printf "SSL_write_ex entry probe: monitor %.2f us/call (%d calls), enforce %.2f us/call (%d calls)\n",
		mt / mc / 1000, mc, et / ec / 1000, ec
	extra = et - ec * (mt / mc)
	printf "in-kernel matcher: %.2f ns/byte walked, %.1f us per 16 KiB write\n",
		extra / kb, extra / kb * 16384 / 1000
}'
