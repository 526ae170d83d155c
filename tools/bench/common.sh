# Shared by the tools/bench-*.sh scripts (sourced): a temp dir, background
# processes that are always stopped, and starting an agent until it is ready.
tmp=$(mktemp -d /tmp/leakwatch-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# start_agent ARGS...: run build/leakwatch ARGS in the background (stdout in
# $tmp/agent.out), wait for "ready"; sets agent_pid
start_agent() {
	"$LW" "$@" >"$tmp/agent.out" 2>"$tmp/agent.err" &
	agent_pid=$!
	pids+=("$agent_pid")
	for _ in $(seq 100); do
		grep -q ready "$tmp/agent.err" && return 0
		sleep 0.1
	done
	cat "$tmp/agent.err" >&2
	echo "bench: agent did not become ready" >&2
	exit 1
}
stop_agent() {
	kill -INT "$agent_pid"
	wait "$agent_pid" || true
}
