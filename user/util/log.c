#include "log.h"

#include <stdarg.h>
#include <stdio.h>

/* The one piece of process-wide state: how chatty stderr is. It is set once
 * from the command line and only read afterwards. */
static enum lw_log_level level = LW_LOG_INFO;

void lw_log_set_level(enum lw_log_level lvl)
{
	level = lvl;
}

bool lw_log_enabled(enum lw_log_level lvl)
{
	return lvl <= level;
}

void lw_log(enum lw_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;

	if (lvl > level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent writers do not interleave. */
	fprintf(stderr, "leakwatch: %s: %s\n", names[lvl], line);
}
