#include "util/percpu.h"

#include <bpf/libbpf.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void lw_percpu_sum(const struct bpf_map *m, uint32_t n, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	memset(out, 0, n * sizeof(*out));
	if (ncpu <= 0)
		return;
	vals = lw_xcalloc((size_t)ncpu, sizeof(*vals));
	for (uint32_t k = 0; k < n; k++) {
		if (bpf_map__lookup_elem(m, &k, sizeof(k), vals, (size_t)ncpu * sizeof(*vals), 0))
			continue;
		for (int i = 0; i < ncpu; i++)
			out[k] += vals[i];
	}
	free(vals);
}
