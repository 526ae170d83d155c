/* leakwatch stats: the running agent's numbers, from its metrics endpoint. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "act/metrics.h"
#include "act/metrics_http.h"
#include "cmd/agentconf.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/netaddr.h"

#define BODY_MAX (64u << 20)

static void usage(FILE *f)
{
	fputs("usage: leakwatch stats [--metrics IP:PORT] [--config FILE]\n"
	      "                       [--format table|json|prometheus]\n"
	      "\n"
	      "Print the running agent's numbers (what it captured, lost, alerted on,\n"
	      "blocked and refused; its probes, rings and self-check), read from its\n"
	      "metrics endpoint: the same numbers GET /metrics gives Prometheus.\n"
	      "\n"
	      "      --metrics ADDR   the agent's endpoint (default: metrics.listen of the\n"
	      "                       configuration file, else " LW_METRICS_DEFAULT_LISTEN ")\n"
	      "      --config FILE    the agent's configuration (default\n"
	      "                       " LW_AGENTCONF_DEFAULT " when it exists)\n"
	      "      --format F       table (default): one line per number;\n"
	      "                       json: {\"metrics\":[{name,type,help,samples}]};\n"
	      "                       prometheus: the text exposition format, as served\n"
	      "      --timeout S      give up after S seconds (default 5)\n"
	      "  -h, --help           this help\n"
	      "\n"
	      "Only root, and the users listed in metrics.allow_uids, may read it.\n"
	      "Exit codes: 0 ok, 1 the agent cannot be reached or refused, 2 usage.\n",
	      f);
}

static int wait_fd(int fd, short ev, const struct timespec *until)
{
	struct timespec now;
	long ms;
	struct pollfd pf = {fd, ev, 0};

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (until->tv_sec - now.tv_sec) * 1000 + (until->tv_nsec - now.tv_nsec) / 1000000;
	if (ms <= 0)
		return -ETIMEDOUT;
	if (poll(&pf, 1, (int)ms) != 1)
		return -ETIMEDOUT;
	return 0;
}

/* GET path; the whole answer in out. 0, or -errno (what failed in *what). */
static int fetch(const char *addr, const char *path, double timeout_s, struct lw_buf *out,
		 const char **what)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct timespec until;
	char req[256];
	int fd, rc = 0, e = 0;
	socklen_t el = sizeof(e);
	size_t off = 0, n;

	if (lw_hostport_parse(addr, &ss, &len)) {
		*what = "bad address";
		return -EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)timeout_s;
	until.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*what = "socket";
		return -errno;
	}
	*what = "connect";
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		if ((rc = wait_fd(fd, POLLOUT, &until)))
			goto out;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) || e) {
			rc = -(e ? e : errno);
			goto out;
		}
	}
	n = (size_t)snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: leakwatch-stats\r\n"
			     "Connection: close\r\n\r\n",
			     path, addr);
	*what = "send";
	while (off < n) {
		ssize_t k = send(fd, req + off, n - off, MSG_NOSIGNAL);

		if (k > 0) {
			off += (size_t)k;
		} else if (k < 0 && errno == EAGAIN) {
			if ((rc = wait_fd(fd, POLLOUT, &until)))
				goto out;
		} else {
			rc = -errno;
			goto out;
		}
	}
	*what = "read";
	for (;;) {
		ssize_t k;

		lw_buf_reserve(out, 65536);
		k = recv(fd, out->p + out->len, 65536, 0);
		if (k > 0) {
			out->len += (size_t)k;
			if (out->len > BODY_MAX) {
				rc = -EFBIG;
				goto out;
			}
		} else if (k == 0 || (errno == ECONNRESET && out->len)) {
			break; /* a reset after the answer: it said what it had to */
		} else if (errno == EAGAIN) {
			if ((rc = wait_fd(fd, POLLIN, &until)))
				goto out;
		} else {
			rc = -errno;
			goto out;
		}
	}
	lw_buf_putc(out, 0);
	out->len--;
out:
	close(fd);
	return rc;
}

static void label_text(struct lw_buf *b, json_t *labels)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach(labels, k, v)
	{
		lw_buf_printf(b, "%c%s=\"", first ? '{' : ',', k);
		lw_metrics_escape(b, json_string_value(v) ? json_string_value(v) : "", true);
		lw_buf_putc(b, '"');
		first = false;
	}
	if (!first)
		lw_buf_putc(b, '}');
}

/* One line per sample: name{labels} and the value, as the endpoint says it. */
static int print_table(const char *body, FILE *out)
{
	json_error_t jerr;
	json_t *root = json_loads(body, 0, &jerr), *fam;
	struct lw_buf line = {0}, val = {0};
	size_t i;

	if (!json_is_array(json_object_get(root, "metrics"))) {
		fprintf(stderr,
			"leakwatch stats: the agent's answer is not the JSON expected: %s\n",
			jerr.text);
		json_decref(root);
		return 1;
	}
	json_array_foreach(json_object_get(root, "metrics"), i, fam)
	{
		const char *name = json_string_value(json_object_get(fam, "name"));
		json_t *s;
		size_t k;

		json_array_foreach(json_object_get(fam, "samples"), k, s)
		{
			json_t *v = json_object_get(s, "value");

			lw_buf_reset(&line);
			lw_buf_puts(&line, name ? name : "?");
			label_text(&line, json_object_get(s, "labels"));
			lw_buf_putc(&line, 0);
			lw_buf_reset(&val);
			if (json_is_integer(v))
				lw_buf_printf(&val, "%lld", (long long)json_integer_value(v));
			else if (json_is_real(v))
				lw_metrics_num(&val, json_real_value(v));
			else
				lw_buf_putc(&val, '-');
			lw_buf_putc(&val, 0);
			fprintf(out, "%-64s %s\n", line.p, val.p);
		}
	}
	lw_buf_free(&line);
	lw_buf_free(&val);
	json_decref(root);
	return 0;
}

int lw_cmd_stats(int argc, char **argv)
{
	static const struct option opts[] = {
		{"metrics", required_argument, 0, 'm'}, {"config", required_argument, 0, 'c'},
		{"format", required_argument, 0, 'f'},	{"timeout", required_argument, 0, 't'},
		{"help", no_argument, 0, 'h'},		{0, 0, 0, 0},
	};
	const char *addr = NULL, *config = NULL, *format = "table", *what = "";
	struct lw_agent_conf conf = {0};
	struct lw_buf resp = {0};
	struct sockaddr_storage ss;
	socklen_t len;
	double timeout_s = 5;
	char *body, *end;
	int c, rc, status = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			addr = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 't':
			timeout_s = strtod(optarg, &end);
			if (*end || timeout_s <= 0 || timeout_s > 3600) {
				fprintf(stderr, "leakwatch stats: bad --timeout '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc ||
	    (strcmp(format, "table") && strcmp(format, "json") && strcmp(format, "prometheus"))) {
		usage(stderr);
		return 2;
	}
	if (addr && lw_hostport_parse(addr, &ss, &len)) {
		fprintf(stderr, "leakwatch stats: --metrics: expected IP:PORT or [IPv6]:PORT\n");
		return 2;
	}
	if (!addr && (config || access(LW_AGENTCONF_DEFAULT, F_OK) == 0)) {
		struct lw_diag d = {0};

		if (lw_agent_conf_load(config ? config : LW_AGENTCONF_DEFAULT, &conf, &d)) {
			for (size_t i = 0; i < d.n; i++)
				fprintf(stderr, "leakwatch stats: %s\n", d.msgs[i]);
			lw_diag_free(&d);
			lw_agent_conf_free(&conf);
			return 1;
		}
		lw_diag_free(&d);
		addr = conf.metrics_listen;
	}
	if (!addr)
		addr = LW_METRICS_DEFAULT_LISTEN;
	if (!strcmp(addr, "off")) {
		fprintf(stderr, "leakwatch stats: the configuration turns the agent's metrics "
				"endpoint off (metrics.listen: off)\n");
		lw_agent_conf_free(&conf);
		return 1;
	}
	rc = fetch(addr, strcmp(format, "prometheus") ? "/stats" : "/metrics", timeout_s, &resp,
		   &what);
	body = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
	if (rc || !body || sscanf(resp.p, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr,
			"leakwatch stats: no agent answers on %s (%s: %s): is `leakwatch run` "
			"running, with its metrics endpoint there?\n",
			addr, what, rc ? strerror(-rc) : "not an HTTP answer");
		rc = 1;
	} else if (status == 403) {
		fprintf(stderr,
			"leakwatch stats: the agent on %s refused (403): only root and the users "
			"in metrics.allow_uids may read its numbers\n",
			addr);
		rc = 1;
	} else if (status != 200) {
		fprintf(stderr, "leakwatch stats: the agent on %s answered %d\n", addr, status);
		rc = 1;
	} else if (!strcmp(format, "table")) {
		rc = print_table(body + 4, stdout);
	} else {
		fputs(body + 4, stdout);
		rc = 0;
	}
	lw_buf_free(&resp);
	lw_agent_conf_free(&conf);
	return rc;
}
