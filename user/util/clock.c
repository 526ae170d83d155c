#include <stdio.h>
#include <time.h>

#include "util/clock.h"

int64_t lw_mono_to_real_ns(void)
{
	struct timespec mono, real;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	return ((int64_t)real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec);
}

void lw_iso_time(int64_t real_ns, char *out, size_t n)
{
	time_t sec = (time_t)(real_ns / 1000000000);
	struct tm tm;
	char base[32];

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06ldZ", base, (long)(real_ns % 1000000000) / 1000);
}
