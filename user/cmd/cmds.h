/* Subcommands. Each parses its own arguments and returns the exit code:
 * 0 ok, 1 findings or failure, 2 usage. */
#ifndef LW_CMDS_H
#define LW_CMDS_H

int lw_cmd_trace(int argc, char **argv);
int lw_cmd_run(int argc, char **argv);
int lw_cmd_policy(int argc, char **argv);
int lw_cmd_scan(int argc, char **argv);

#endif
