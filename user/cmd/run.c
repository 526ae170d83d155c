/* leakwatch run: the agent. This stage captures and accounts for every
 * message; decoding, classification and policy attach behind it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/agent_loop.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/log.h"

struct run {
	uint64_t messages, bytes;
};

static void on_message(const struct lw_msg_view *v, void *ud)
{
	struct run *r = ud;

	r->messages++;
	r->bytes += v->m->captured;
}

static void usage(FILE *f)
{
	fputs("usage: leakwatch run [options]\n"
	      "\n"
	      "Run the agent in the foreground: hook the TLS libraries of every process,\n"
	      "capture what they send and receive, and report statistics, until SIGINT or\n"
	      "SIGTERM.\n"
	      "\n"
	      "      --policy DIR        policy directory (default /etc/leakwatch/policies,\n"
	      "                          else ./policies)\n"
	      "      --capture-max N     bytes captured per message (default 1M)\n"
	      "      --ring-size N       kernel ring buffer size (default 32M)\n"
	      "      --stats-interval S  print a `stats: {...}` line every S seconds (default 60)\n"
	      "      --duration SEC      stop after SEC seconds\n"
	      "      --no-pause          never pause a process that maps a new libssl\n"
	      "  -v, --verbose           debug logging\n"
	      "  -h, --help              this help\n",
	      f);
}

int lw_cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, 0, 'P' },
		{ "capture-max", required_argument, 0, 'M' },
		{ "ring-size", required_argument, 0, 'R' },
		{ "stats-interval", required_argument, 0, 'S' },
		{ "duration", required_argument, 0, 'D' },
		{ "no-pause", no_argument, 0, 'N' },
		{ "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct lw_loop_opts lo = { .cap = { .stop_new_libs = true }, .stats_interval_s = 60 };
	struct lw_loop_result res;
	struct run r = { 0 };
	const char *policy = NULL;
	struct lw_buf b = { 0 };
	struct stat st;
	int c, rc;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		int64_t v;
		char *end;

		switch (c) {
		case 'P':
			policy = optarg;
			break;
		case 'M':
			v = lw_parse_size(optarg);
			if (v < 1 || v > LW_CAPTURE_CEIL) {
				fprintf(stderr, "leakwatch run: --capture-max must be 1..%u bytes\n",
					LW_CAPTURE_CEIL);
				return 2;
			}
			lo.cap.capture_max = (uint32_t)v;
			break;
		case 'R':
			v = lw_parse_size(optarg);
			if (v < (1 << 16) || v > (1 << 30)) {
				fprintf(stderr, "leakwatch run: --ring-size must be 64K..1G\n");
				return 2;
			}
			lo.cap.ring_bytes = (uint32_t)v;
			break;
		case 'S':
		case 'D': {
			double d = strtod(optarg, &end);

			if (*end || d < 0) {
				fprintf(stderr, "leakwatch run: bad number '%s'\n", optarg);
				return 2;
			}
			if (c == 'S')
				lo.stats_interval_s = d;
			else
				lo.duration_s = d;
			break;
		}
		case 'N':
			lo.cap.stop_new_libs = false;
			break;
		case 'v':
			lw_log_set_level(LW_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "leakwatch run: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!policy)
		policy = stat("/etc/leakwatch/policies", &st) == 0 ? "/etc/leakwatch/policies"
								  : "policies";
	if (stat(policy, &st) != 0 || !S_ISDIR(st.st_mode)) {
		lw_err("policy directory %s: not found", policy);
		return 1;
	}
	lw_info("policy directory %s", policy);
	lo.on_message = on_message;
	lo.ud = &r;
	rc = lw_loop_run(&lo, &res);
	if (rc)
		return rc;
	lw_loop_stats_json(&res, &b);
	fprintf(stderr, "stats: %s\n", b.p);
	lw_info("stopped: %llu messages, %llu bytes captured", (unsigned long long)r.messages,
		(unsigned long long)r.bytes);
	lw_buf_free(&b);
	return 0;
}
