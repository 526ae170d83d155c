/* leakwatch trace: print captured plaintext live, like bcc's sslsniff. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/agent_loop.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/log.h"

static const char *const func_names[LW_FN__MAX] = {
	[LW_FN_SSL_WRITE] = "SSL_write",
	[LW_FN_SSL_WRITE_EX] = "SSL_write_ex",
	[LW_FN_SSL_READ] = "SSL_read",
	[LW_FN_SSL_READ_EX] = "SSL_read_ex",
	[LW_FN_GNUTLS_SEND] = "gnutls_record_send",
	[LW_FN_GNUTLS_RECV] = "gnutls_record_recv",
	[LW_FN_PR_WRITE] = "PR_Write",
	[LW_FN_PR_SEND] = "PR_Send",
	[LW_FN_PR_READ] = "PR_Read",
	[LW_FN_PR_RECV] = "PR_Recv",
	[LW_FN_GO_WRITE] = "crypto/tls.(*Conn).Write",
	[LW_FN_GO_READ] = "crypto/tls.(*Conn).Read",
	[LW_FN_SOCK_SEND] = "send",
};

struct trace {
	bool json;
	const char *comm;
	int64_t mono_to_real_ns; /* add to CLOCK_MONOTONIC to get wall time */
	struct lw_buf out;
};

static void print_json(struct trace *t, const struct lw_msg_view *v)
{
	const struct lw_msg *m = v->m;
	struct lw_json j;
	char ts[48], dst[64], src[64];

	lw_iso_time((int64_t)m->ts_ns + t->mono_to_real_ns, ts, sizeof(ts));
	lw_addr_str(&v->conn->dst, dst, sizeof(dst));
	lw_addr_str(&v->conn->src, src, sizeof(src));
	lw_json_begin(&j, &t->out);
	lw_json_str(&j, "ts", ts);
	lw_json_u64(&j, "pid", m->pid);
	lw_json_u64(&j, "tid", m->tid);
	lw_json_str(&j, "comm", m->comm);
	lw_json_str(&j, "exe", v->proc->exe);
	lw_json_str(&j, "service", v->proc->service);
	lw_json_str(&j, "cgroup", v->proc->cgroup);
	lw_json_str(&j, "lib", v->lib);
	lw_json_str(&j, "stack", lw_func_stack(m->func));
	lw_json_str(&j, "func", m->func < LW_FN__MAX ? func_names[m->func] : "");
	lw_json_str(&j, "dir", m->dir == LW_DIR_EGRESS ? "egress" : "ingress");
	lw_json_u64(&j, "conn", m->conn_id);
	lw_json_u64(&j, "seq", m->seq);
	lw_json_i64(&j, "fd", v->conn->fd);
	lw_json_str(&j, "dst", dst);
	lw_json_str(&j, "src", src);
	lw_json_str(&j, "sni", v->conn->sni);
	lw_json_u64(&j, "len", m->total_len);
	lw_json_u64(&j, "captured", m->captured);
	lw_json_bool(&j, "truncated", m->truncated);
	lw_json_u64(&j, "lost", m->lost);
	if (lw_utf8_valid(m->data, m->captured)) {
		lw_json_str(&j, "encoding", "utf8");
		lw_json_strn(&j, "data", m->data, m->captured);
	} else {
		lw_json_str(&j, "encoding", "base64");
		lw_json_raw(&j, "data", "\"");
		lw_base64(&t->out, m->data, m->captured);
		lw_buf_putc(&t->out, '"');
	}
	lw_json_end(&j);
}

static void print_text(struct trace *t, const struct lw_msg_view *v)
{
	const struct lw_msg *m = v->m;
	char ts[48], dst[64];

	lw_iso_time((int64_t)m->ts_ns + t->mono_to_real_ns, ts, sizeof(ts));
	lw_addr_str(&v->conn->dst, dst, sizeof(dst));
	lw_buf_printf(&t->out, "%s %s[%u/%u] %s conn=%llu #%u %s %s%s%s %u bytes%s\n", ts + 11,
		      m->comm, m->pid, m->tid, m->dir == LW_DIR_EGRESS ? "->" : "<-",
		      (unsigned long long)m->conn_id, m->seq, dst[0] ? dst : "?",
		      v->conn->sni[0] ? "(" : "", v->conn->sni, v->conn->sni[0] ? ")" : "",
		      m->total_len, m->truncated ? " (truncated)" : "");
	for (uint32_t i = 0; i < m->captured; i++) {
		unsigned char ch = m->data[i];

		lw_buf_putc(&t->out,
			    (ch >= 0x20 && ch < 0x7f) || ch == '\n' || ch == '\t' ? (char)ch : '.');
	}
	lw_buf_puts(&t->out, "\n");
}

static void on_message(const struct lw_msg_view *v, void *ud)
{
	struct trace *t = ud;

	if (t->comm && strncmp(t->comm, v->m->comm, LW_COMM_LEN - 1) != 0)
		return;
	lw_buf_reset(&t->out);
	if (t->json)
		print_json(t, v);
	else
		print_text(t, v);
	lw_buf_putc(&t->out, '\n');
	fwrite(t->out.p, 1, t->out.len - (t->json ? 0 : 1), stdout);
}

static void usage(FILE *f)
{
	fputs("usage: leakwatch trace [options]\n"
	      "\n"
	      "Print the plaintext that processes send and receive through TLS libraries,\n"
	      "one message per SSL read or write, until interrupted (Ctrl-C).\n"
	      "\n"
	      "  -p, --pid N            only this process (probes are installed in it alone)\n"
	      "  -c, --comm NAME        only processes with this command name\n"
	      "  -f, --format FMT       text (default on a terminal) or json (one object per "
	      "line)\n"
	      "      --capture-max N    bytes captured per message (default 1M; K/M/G suffixes)\n"
	      "      --ring-size N      kernel ring buffer size (default 32M)\n"
	      "      --duration SEC     stop after SEC seconds\n"
	      "      --no-pause         never pause a process that maps a new libssl until it\n"
	      "                         is hooked (its first messages may then be missed)\n"
	      "  -v, --verbose          debug logging (libbpf and verifier output)\n"
	      "  -h, --help             this help\n"
	      "\n"
	      "At exit a line `stats: {...}` on stderr reports messages, bytes, ring-buffer\n"
	      "drops, truncations and incomplete messages.\n",
	      f);
}

int lw_cmd_trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, 0, 'p'},
		{"comm", required_argument, 0, 'c'},
		{"format", required_argument, 0, 'f'},
		{"capture-max", required_argument, 0, 'M'},
		{"ring-size", required_argument, 0, 'R'},
		{"duration", required_argument, 0, 'D'},
		{"no-pause", no_argument, 0, 'N'},
		{"verbose", no_argument, 0, 'v'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	struct trace t = {.json = !isatty(STDOUT_FILENO)};
	struct lw_loop_opts lo = {.cap = {.stop_new_libs = true}};
	struct lw_loop_result res;
	int c, rc;

	while ((c = getopt_long(argc, argv, "p:c:f:vh", opts, NULL)) != -1) {
		int64_t v;
		char *end;

		switch (c) {
		case 'p':
			v = strtol(optarg, &end, 10);
			if (*end || v <= 0) {
				fprintf(stderr, "leakwatch trace: bad --pid '%s'\n", optarg);
				return 2;
			}
			lo.cap.only_pid = (pid_t)v;
			break;
		case 'c':
			t.comm = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "leakwatch trace: --format takes text or json\n");
				return 2;
			}
			t.json = strcmp(optarg, "json") == 0;
			break;
		case 'M':
			v = lw_parse_size(optarg);
			if (v < 1 || v > LW_CAPTURE_CEIL) {
				fprintf(stderr,
					"leakwatch trace: --capture-max must be 1..%u bytes\n",
					LW_CAPTURE_CEIL);
				return 2;
			}
			lo.cap.capture_max = (uint32_t)v;
			break;
		case 'R':
			v = lw_parse_size(optarg);
			if (v < (1 << 16) || v > (1 << 30)) {
				fprintf(stderr, "leakwatch trace: --ring-size must be 64K..1G\n");
				return 2;
			}
			lo.cap.ring_bytes = (uint32_t)v;
			break;
		case 'D':
			lo.duration_s = strtod(optarg, &end);
			if (*end || lo.duration_s <= 0) {
				fprintf(stderr, "leakwatch trace: bad --duration '%s'\n", optarg);
				return 2;
			}
			break;
		case 'N':
			lo.cap.stop_new_libs = false;
			break;
		case 'v':
			lw_log_set_level(LW_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "leakwatch trace: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	t.mono_to_real_ns = lw_mono_to_real_ns();
	lo.on_message = on_message;
	lo.ud = &t;
	lo.flush = stdout;
	rc = lw_loop_run(&lo, &res);
	lw_buf_free(&t.out);
	return rc;
}
