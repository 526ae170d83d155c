/* Logging to stderr: one line per event, prefixed with the program name. */
#ifndef LW_LOG_H
#define LW_LOG_H

#include <stdbool.h>

enum lw_log_level { LW_LOG_ERROR = 0, LW_LOG_WARN, LW_LOG_INFO, LW_LOG_DEBUG };

void lw_log_set_level(enum lw_log_level lvl);
bool lw_log_enabled(enum lw_log_level lvl);
void lw_log(enum lw_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lw_err(...) lw_log(LW_LOG_ERROR, __VA_ARGS__)
#define lw_warn(...) lw_log(LW_LOG_WARN, __VA_ARGS__)
#define lw_info(...) lw_log(LW_LOG_INFO, __VA_ARGS__)
#define lw_debug(...) lw_log(LW_LOG_DEBUG, __VA_ARGS__)

#endif
