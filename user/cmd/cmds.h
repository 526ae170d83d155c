/* Subcommands. Each parses its own arguments and returns the exit code:
 * 0 ok, 1 findings or failure, 2 usage. */
#ifndef LW_CMDS_H
#define LW_CMDS_H

#include <stdio.h>

int lw_cmd_trace(int argc, char **argv);
int lw_cmd_run(int argc, char **argv);
int lw_cmd_policy(int argc, char **argv);
int lw_cmd_scan(int argc, char **argv);
int lw_cmd_alerts(int argc, char **argv);
int lw_cmd_inventory(int argc, char **argv);
int lw_cmd_stats(int argc, char **argv);
/* The same, writing to out and err: what tests call. */
int lw_cmd_alerts_io(int argc, char **argv, FILE *out, FILE *err);

#endif
