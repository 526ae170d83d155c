/* Kernel timestamps (CLOCK_MONOTONIC, as bpf_ktime_get_ns) as wall time. */
#ifndef LW_CLOCK_H
#define LW_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Add to a CLOCK_MONOTONIC time to get CLOCK_REALTIME, taken once at start
 * so every event of a run is placed consistently. */
int64_t lw_mono_to_real_ns(void);
/* "2026-11-26T03:24:42.123456Z" */
void lw_iso_time(int64_t real_ns, char *out, size_t n);

#endif
