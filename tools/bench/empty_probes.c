/* empty_probes FILE...: attach empty uprobes/uretprobes to the OpenSSL call
 * sites leakwatch hooks, in every FILE, until SIGINT/SIGTERM. The benchmark
 * floor: what any uprobe-based capture costs on this kernel. */
#include <bpf/libbpf.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "capture/elfsym.h"
#include "empty.skel.h"

int main(int argc, char **argv)
{
	/* same functions, same entry/return split as bpf/capture.bpf.c */
	static const char *const syms[] = { "SSL_write", "SSL_write_ex", "SSL_read",
					    "SSL_read_ex", "SSL_ctrl", "SSL_set_fd", "SSL_free" };
	static const int has_ret[] = { 1, 1, 1, 1, 0, 0, 0 };
	struct empty_bpf *s = empty_bpf__open_and_load();
	int n = 0, sig;
	sigset_t set;

	if (!s) {
		fprintf(stderr, "empty_probes: cannot load\n");
		return 1;
	}
	for (int f = 1; f < argc; f++) {
		uint64_t offs[7];

		if (lw_elf_func_offsets(argv[f], syms, 7, offs) < 0)
			continue;
		for (int i = 0; i < 7; i++) {
			if (!offs[i])
				continue;
			n += !!bpf_program__attach_uprobe(s->progs.empty_enter, false, -1, argv[f],
							   offs[i]);
			if (has_ret[i])
				n += !!bpf_program__attach_uprobe(s->progs.empty_leave, true, -1,
								   argv[f], offs[i]);
		}
	}
	fprintf(stderr, "empty_probes: ready, %d probes\n", n);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigwait(&set, &sig);
	empty_bpf__destroy(s); /* links are released with the process */
	return 0;
}
