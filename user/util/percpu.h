/* Reading the per-CPU counter arrays the BPF programs keep. */
#ifndef LW_PERCPU_H
#define LW_PERCPU_H

#include <stdint.h>

struct bpf_map;

/* out[k] = sum over CPUs of counter k, for k < n (a BPF_MAP_TYPE_PERCPU_ARRAY
 * of u64). Counters that cannot be read are 0. */
void lw_percpu_sum(const struct bpf_map *m, uint32_t n, uint64_t *out);

#endif
