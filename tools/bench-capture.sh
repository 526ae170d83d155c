#!/usr/bin/env bash
# Capture benchmarks (issue 2). Measured, never asserted:
#  1. keep-alive HTTPS POST loop, 16 KiB bodies: requests/s without the agent,
#     with empty probes on the same call sites (the floor: what the uprobe
#     traps alone cost), and with `leakwatch run`, alternating, same run ->
#     ratios agent/none (the user's cost) and agent/empty (ours).
#  2. loss: 10,000 TLS messages/s for LOSS_SECONDS through `leakwatch trace`
#     -> messages sent, captured, lost.
# Env: POST_SECONDS (10), ROUNDS (2), LOSS_RATE (10000), LOSS_SECONDS (60).
set -euo pipefail
cd "$(dirname "$0")/.."
LW=$PWD/build/leakwatch
POST_SECONDS=${POST_SECONDS:-10}
ROUNDS=${ROUNDS:-2}
LOSS_RATE=${LOSS_RATE:-10000}
LOSS_SECONDS=${LOSS_SECONDS:-60}
HTTP_PORT=${HTTP_PORT:-18460}
SINK_PORT=${SINK_PORT:-18461}

. tools/bench/common.sh

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
	-days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
python3 tools/bench/tls_server.py --cert "$tmp/cert.pem" --key "$tmp/key.pem" \
	--http-port "$HTTP_PORT" --sink-port "$SINK_PORT" &
pids+=($!)
sleep 1

post_rate() {
	python3 tools/bench/tls_client.py post-loop --port "$HTTP_PORT" --ca "$tmp/cert.pem" \
		--seconds "$POST_SECONDS" --body 16384 | awk '{print $6}'
}

# the libssl the python peers really map
libssl=$(python3 -c 'import _ssl
print(next(l.split()[-1] for l in open("/proc/self/maps") if "/libssl" in l))')

echo "== keep-alive HTTPS POST loop, 16 KiB bodies, ${POST_SECONDS}s x ${ROUNDS} rounds"
base_sum=0
empty_sum=0
agent_sum=0
for r in $(seq "$ROUNDS"); do
	b=$(post_rate)
	"$PWD/build/empty_probes" "$libssl" 2>"$tmp/empty.err" &
	empty_pid=$!
	pids+=("$empty_pid")
	for _ in $(seq 50); do grep -q ready "$tmp/empty.err" && break; sleep 0.1; done
	e=$(post_rate)
	kill -INT "$empty_pid"
	wait "$empty_pid" || true
	start_agent run --state-dir "$tmp/state" --policy policies --stats-interval 0
	a=$(post_rate)
	stop_agent
	echo "round $r: no agent ${b} req/s, empty probes ${e} req/s, with agent ${a} req/s"
	base_sum=$(awk -v x="$base_sum" -v y="$b" 'BEGIN{print x + y}')
	empty_sum=$(awk -v x="$empty_sum" -v y="$e" 'BEGIN{print x + y}')
	agent_sum=$(awk -v x="$agent_sum" -v y="$a" 'BEGIN{print x + y}')
done
awk -v a="$agent_sum" -v b="$base_sum" -v e="$empty_sum" 'BEGIN{
	printf "throughput ratio with agent / without: %.3f\n", a / b
	printf "throughput ratio empty probes / without (the trap floor): %.3f\n", e / b
	printf "throughput ratio with agent / empty probes (our cost): %.3f\n", a / e }'

echo "== loss: ${LOSS_RATE} messages/s for ${LOSS_SECONDS}s (512-byte TLS writes)"
start_agent trace --format json
python3 tools/bench/tls_client.py rate --port "$SINK_PORT" --ca "$tmp/cert.pem" \
	--rate "$LOSS_RATE" --seconds "$LOSS_SECONDS" --size 512 >"$tmp/sent" &
client=$!
pids+=("$client")
wait "$client"
sleep 1
stop_agent
sent=$(awk '{print $2}' "$tmp/sent")
echo "client: $(cat "$tmp/sent")"
captured=$(python3 - "$tmp/agent.out" "$client" <<'PY'
import json, sys
n = 0
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["pid"] == int(sys.argv[2]) and m["dir"] == "egress" and m["len"] == 512 \
            and not m["truncated"] and m["data"].startswith("mmm"):
        n += 1
print(n)
PY
)
echo "messages sent ${sent}, captured ${captured}, lost $((sent - captured))"
grep '^stats:' "$tmp/agent.err" | tail -1
