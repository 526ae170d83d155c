/* leakwatch: one binary, one subcommand per task. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmds.h"

#ifndef LW_VERSION
#define LW_VERSION "0.1.0-dev"
#endif

static void usage(FILE *f)
{
	fputs("usage: leakwatch COMMAND [options]\n"
	      "\n"
	      "Stops sensitive data from leaking to third-party AI APIs: hooks TLS libraries\n"
	      "with eBPF, captures plaintext before encryption, and reports it.\n"
	      "\n"
	      "commands:\n"
	      "  run       run the agent (foreground)\n"
	      "  trace     print captured TLS plaintext live (debugging)\n"
	      "  policy    check or show a policy directory (policy check DIR)\n"
	      "  scan      classify files offline with the agent's decoders and rules\n"
	      "  alerts    list, show, acknowledge or export the recorded alerts\n"
	      "  inventory which services use which AI providers, models, endpoints\n"
	      "  stats     the running agent's numbers (its metrics endpoint)\n"
	      "  version   print the version\n"
	      "\n"
	      "`leakwatch COMMAND --help` describes each command.\n"
	      "Exit codes: 0 ok, 1 findings or failure, 2 usage error.\n",
	      f);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("leakwatch %s\n", LW_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return lw_cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "trace"))
		return lw_cmd_trace(argc - 1, argv + 1);
	if (!strcmp(cmd, "scan"))
		return lw_cmd_scan(argc - 1, argv + 1);
	if (!strcmp(cmd, "policy"))
		return lw_cmd_policy(argc - 1, argv + 1);
	if (!strcmp(cmd, "alerts"))
		return lw_cmd_alerts(argc - 1, argv + 1);
	if (!strcmp(cmd, "inventory"))
		return lw_cmd_inventory(argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return lw_cmd_stats(argc - 1, argv + 1);
	fprintf(stderr, "leakwatch: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
