#!/usr/bin/env bash
# Provider-gate benchmarks (issue 3). Measured, never asserted:
#  1. TLS connect + handshake latency to a provider name (allowed): no agent,
#     `leakwatch trace` (capture only) and `leakwatch run` (capture + gates)
#     -> ratios run/none and run/trace (the gates alone).
#  2. send() rate on a non-provider TCP/443 socket after its first record
#     (released from the sockhash): no agent vs `leakwatch run`.
# Needs port 443 on loopback free. Env: COUNT (300), BENCH_SECONDS (5; not SECONDS,
# which bash keeps as its own run time).
set -euo pipefail
cd "$(dirname "$0")/.."
LW=$PWD/build/leakwatch
COUNT=${COUNT:-300}
SECONDS_=${BENCH_SECONDS:-5}
. tools/bench/common.sh

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 1 \
	-subj /CN=api.openai.com -addext subjectAltName=DNS:api.openai.com,DNS:internal.example.test \
	2>/dev/null
python3 tools/bench/gates_server.py "$tmp/cert.pem" "$tmp/key.pem" &
pids+=($!)
sleep 1

hs() { python3 tools/bench/gates_client.py handshakes --ca "$tmp/cert.pem" --count "$COUNT" | awk '{print $4}'; }
sends() { python3 tools/bench/gates_client.py sends --seconds "$SECONDS_" | awk '{print $4}'; }

echo "== TLS connect + handshake to api.openai.com (allowed), $COUNT each, mean us"
none=$(hs)
start_agent trace --format json
trace=$(hs)
stop_agent
start_agent run --state-dir "$tmp/state" --policy policies --stats-interval 0
run=$(hs)
stop_agent
none2=$(hs)
echo "no agent ${none} / ${none2}, trace (capture) ${trace}, run (capture + gates) ${run}"
awk -v n="$none" -v m="$none2" -v t="$trace" -v r="$run" 'BEGIN{
	printf "handshake latency ratio run / no agent: %.3f\n", r / ((n + m) / 2)
	printf "handshake latency ratio run / trace (the gates alone): %.3f\n", r / t }'

echo "== send() rate on a released non-provider socket, ${SECONDS_}s"
b=$(sends)
start_agent trace --format json
t=$(sends)
stop_agent
start_agent run --state-dir "$tmp/state" --policy policies --stats-interval 0
a=$(sends)
stop_agent
echo "no agent ${b}/s, trace (capture) ${t}/s, run (capture + gates) ${a}/s"
awk -v a="$a" -v b="$b" -v t="$t" 'BEGIN{
	printf "send rate ratio run / no agent: %.3f\n", a / b
	printf "send rate ratio run / trace (the gates alone): %.3f\n", a / t }'
