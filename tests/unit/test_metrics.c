/*
 * Unit tests for the metrics endpoint's pieces: the text exposition writer
 * (HELP/TYPE lines, label and help escaping, invalid UTF-8, number
 * formatting, refused names), its JSON twin, the access rule, host:port and
 * CIDR parsing, the tallies, and the server itself on a loopback socket
 * (a scrape, a 404, an oversized request, a client that never asks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "act/metrics.h"
#include "act/metrics_http.h"
#include "cmd/agentconf.h"
#include "stream/messages.h"
#include "util/buf.h"
#include "util/netaddr.h"
#include "util/tally.h"

static char *text_of(const struct lw_metrics *m)
{
	struct lw_buf b = {0};

	lw_metrics_text(m, &b);
	lw_buf_putc(&b, 0);
	return b.p;
}

static char *num(double v)
{
	struct lw_buf b = {0};

	lw_metrics_num(&b, v);
	lw_buf_putc(&b, 0);
	return b.p;
}

static char *esc(const char *s, bool quote)
{
	struct lw_buf b = {0};

	lw_metrics_escape(&b, s, quote);
	lw_buf_putc(&b, 0);
	return b.p;
}

/* ---- the text format ---- */

static void test_text_exact(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	assert_true(lw_metrics_family(m, "lw_a_total", LW_METRIC_COUNTER, "Things counted"));
	lw_metrics_u64(m, 3, NULL);
	assert_true(lw_metrics_family(m, "lw_b", LW_METRIC_GAUGE, "A gauge"));
	lw_metrics_f64(m, 0.5, "x", "1", "y", "two", NULL);
	lw_metrics_f64(m, -2, "x", "2", "y", "", NULL);
	t = text_of(m);
	assert_string_equal(t, "# HELP lw_a_total Things counted\n"
			       "# TYPE lw_a_total counter\n"
			       "lw_a_total 3\n"
			       "# HELP lw_b A gauge\n"
			       "# TYPE lw_b gauge\n"
			       "lw_b{x=\"1\",y=\"two\"} 0.5\n"
			       "lw_b{x=\"2\",y=\"\"} -2\n");
	free(t);
	lw_metrics_free(m);
}

/* A family named again continues where it was, under one HELP/TYPE. */
static void test_family_continued(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	lw_metrics_family(m, "lw_x_total", LW_METRIC_COUNTER, "x");
	lw_metrics_u64(m, 1, "k", "a", NULL);
	lw_metrics_family(m, "lw_y", LW_METRIC_GAUGE, "y");
	lw_metrics_u64(m, 7, NULL);
	lw_metrics_family(m, "lw_x_total", LW_METRIC_COUNTER, "ignored");
	lw_metrics_u64(m, 2, "k", "b", NULL);
	t = text_of(m);
	assert_string_equal(t, "# HELP lw_x_total x\n# TYPE lw_x_total counter\n"
			       "lw_x_total{k=\"a\"} 1\nlw_x_total{k=\"b\"} 2\n"
			       "# HELP lw_y y\n# TYPE lw_y gauge\nlw_y 7\n");
	free(t);
	lw_metrics_free(m);
}

/* A family with no samples still says what it is (valid 0.0.4). */
static void test_empty_family(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	lw_metrics_family(m, "lw_none_total", LW_METRIC_COUNTER, "nothing yet");
	t = text_of(m);
	assert_string_equal(t, "# HELP lw_none_total nothing yet\n# TYPE lw_none_total counter\n");
	free(t);
	lw_metrics_free(m);
}

static void test_escape_label_values(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t, *e;

	(void)state;
	e = esc("a\\b\"c\nd", true);
	assert_string_equal(e, "a\\\\b\\\"c\\nd");
	free(e);
	/* tabs, braces, commas and '=' need nothing: the quotes delimit */
	e = esc("x\ty},z=\"", true);
	assert_string_equal(e, "x\ty},z=\\\"");
	free(e);
	lw_metrics_family(m, "lw_p", LW_METRIC_GAUGE, "h");
	lw_metrics_u64(m, 1, "path", "/opt/a \"b\"\\c\nd", NULL);
	t = text_of(m);
	assert_non_null(strstr(t, "lw_p{path=\"/opt/a \\\"b\\\"\\\\c\\nd\"} 1\n"));
	free(t);
	lw_metrics_free(m);
}

/* HELP escapes backslash and newline, not quotes. */
static void test_escape_help(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	lw_metrics_family(m, "lw_h", LW_METRIC_GAUGE, "say \"hi\"\\\nbye");
	t = text_of(m);
	assert_non_null(strstr(t, "# HELP lw_h say \"hi\"\\\\\\nbye\n"));
	free(t);
	lw_metrics_free(m);
}

/* A path is bytes: what is not UTF-8 becomes U+FFFD, the rest stays. */
static void test_escape_invalid_utf8(void **state)
{
	char *e;

	(void)state;
	e = esc("caf\xc3\xa9", true);
	assert_string_equal(e, "caf\xc3\xa9");
	free(e);
	e = esc("a\xff"
		"b\xc3",
		true);
	assert_string_equal(e, "a\xef\xbf\xbd"
			       "b\xef\xbf\xbd");
	free(e);
	e = esc("\xed\xa0\x80", true); /* a surrogate: not UTF-8 */
	assert_string_equal(e, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	free(e);
	e = esc("\xf0\x9f\x98\x80!", true);
	assert_string_equal(e, "\xf0\x9f\x98\x80!");
	free(e);
}

static void test_numbers(void **state)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
		{0, "0"},
		{1, "1"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1e21, "1e+21"},
		{1.0 / 3, "0.3333333333333333"},
		{33554432, "33554432"},
		{2.5e-9, "2.5e-09"},
	};
	char *s;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = num(cases[i].v);
		assert_string_equal(s, cases[i].want);
		assert_true(strtod(s, NULL) == cases[i].v);
		free(s);
	}
	s = num(NAN);
	assert_string_equal(s, "NaN");
	free(s);
	s = num(INFINITY);
	assert_string_equal(s, "+Inf");
	free(s);
	s = num(-INFINITY);
	assert_string_equal(s, "-Inf");
	free(s);
}

/* Counters are exact integers, also past 2^53 where a double is not. */
static void test_integers_exact(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	lw_metrics_family(m, "lw_big_total", LW_METRIC_COUNTER, "h");
	lw_metrics_u64(m, 18446744073709551615ULL, NULL);
	lw_metrics_u64(m, 9007199254740993ULL, "k", "v", NULL);
	t = text_of(m);
	assert_non_null(strstr(t, "lw_big_total 18446744073709551615\n"));
	assert_non_null(strstr(t, "lw_big_total{k=\"v\"} 9007199254740993\n"));
	free(t);
	lw_metrics_free(m);
}

static void test_names(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	char *t;

	(void)state;
	assert_true(lw_metrics_name_ok("leakwatch_x_total", false));
	assert_true(lw_metrics_name_ok("a:b_c9", false));
	assert_false(lw_metrics_name_ok("9a", false));
	assert_false(lw_metrics_name_ok("a-b", false));
	assert_false(lw_metrics_name_ok("", false));
	assert_false(lw_metrics_name_ok("a:b", true)); /* labels: no colon */
	assert_false(lw_metrics_name_ok("__name", true));
	assert_true(lw_metrics_name_ok("_x", true));
	/* a refused family drops its samples; a bad label name drops the label */
	assert_false(lw_metrics_family(m, "bad-name", LW_METRIC_GAUGE, "h"));
	lw_metrics_u64(m, 1, NULL);
	lw_metrics_family(m, "good", LW_METRIC_GAUGE, "h");
	lw_metrics_u64(m, 2, "bad-label", "x", "ok", "y", NULL);
	t = text_of(m);
	assert_string_equal(t, "# HELP good h\n# TYPE good gauge\ngood{ok=\"y\"} 2\n");
	free(t);
	lw_metrics_free(m);
}

/* The JSON twin carries the same names, labels and values. */
static void test_json(void **state)
{
	struct lw_metrics *m = lw_metrics_new();
	struct lw_buf b = {0};
	json_t *root, *f0, *f1, *s;
	json_error_t err;

	(void)state;
	lw_metrics_family(m, "lw_c_total", LW_METRIC_COUNTER, "with \"quotes\"");
	lw_metrics_u64(m, 42, "path", "a\"b\xff", NULL);
	lw_metrics_family(m, "lw_g", LW_METRIC_GAUGE, "g");
	lw_metrics_f64(m, 0.25, NULL);
	lw_metrics_f64(m, NAN, "k", "nan", NULL);
	lw_metrics_json(m, &b);
	lw_buf_putc(&b, 0);
	root = json_loads(b.p, 0, &err);
	assert_non_null(root);
	f0 = json_array_get(json_object_get(root, "metrics"), 0);
	f1 = json_array_get(json_object_get(root, "metrics"), 1);
	assert_string_equal(json_string_value(json_object_get(f0, "name")), "lw_c_total");
	assert_string_equal(json_string_value(json_object_get(f0, "type")), "counter");
	assert_string_equal(json_string_value(json_object_get(f0, "help")), "with \"quotes\"");
	s = json_array_get(json_object_get(f0, "samples"), 0);
	assert_int_equal(json_integer_value(json_object_get(s, "value")), 42);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(s, "labels"), "path")),
		"a\"b\xef\xbf\xbd");
	s = json_array_get(json_object_get(f1, "samples"), 0);
	assert_true(json_real_value(json_object_get(s, "value")) == 0.25);
	s = json_array_get(json_object_get(f1, "samples"), 1);
	assert_true(json_is_null(json_object_get(s, "value")));
	json_decref(root);
	lw_buf_free(&b);
	lw_metrics_free(m);
}

/* ---- addresses and the access rule ---- */

static void test_hostport(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char s[64];

	(void)state;
	assert_int_equal(lw_hostport_parse("127.0.0.1:9464", &ss, &len), 0);
	lw_sockaddr_str((struct sockaddr *)&ss, s, sizeof(s));
	assert_string_equal(s, "127.0.0.1:9464");
	assert_true(lw_sockaddr_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(lw_hostport_parse("[::1]:80", &ss, &len), 0);
	lw_sockaddr_str((struct sockaddr *)&ss, s, sizeof(s));
	assert_string_equal(s, "[::1]:80");
	assert_true(lw_sockaddr_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(lw_hostport_parse("localhost:1", &ss, &len), 0);
	assert_true(lw_sockaddr_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(lw_hostport_parse("0.0.0.0:9464", &ss, &len), 0);
	assert_false(lw_sockaddr_is_loopback((struct sockaddr *)&ss));
	assert_int_equal(lw_hostport_parse("[::ffff:127.0.0.2]:9", &ss, &len), 0);
	assert_true(lw_sockaddr_is_loopback((struct sockaddr *)&ss));
	for (const char *const *p =
		     (const char *const[]){"127.0.0.1", "127.0.0.1:0", ":9", "127.0.0.1:65536",
					   "::1:80", "[::1]80", "host.example:80", "127.0.0.1: 80",
					   "127.0.0.1:-1", NULL};
	     *p; p++)
		assert_int_equal(lw_hostport_parse(*p, &ss, &len), -1);
}

static struct sockaddr_storage sa(const char *hostport)
{
	struct sockaddr_storage ss;
	socklen_t len;

	assert_int_equal(lw_hostport_parse(hostport, &ss, &len), 0);
	return ss;
}

static void test_cidr(void **state)
{
	struct lw_cidr c;
	struct sockaddr_storage a = sa("10.1.2.3:1"), b = sa("11.0.0.1:1"),
				m = sa("[::ffff:10.9.9.9]:1"), v6 = sa("[fd00::5]:1");

	(void)state;
	assert_int_equal(lw_cidr_parse("10.0.0.0/8", &c), 0);
	assert_true(lw_cidr_match(&c, (struct sockaddr *)&a));
	assert_false(lw_cidr_match(&c, (struct sockaddr *)&b));
	assert_true(lw_cidr_match(&c, (struct sockaddr *)&m)); /* IPv4-mapped */
	assert_false(lw_cidr_match(&c, (struct sockaddr *)&v6));
	assert_int_equal(lw_cidr_parse("fd00::/8", &c), 0);
	assert_true(lw_cidr_match(&c, (struct sockaddr *)&v6));
	assert_false(lw_cidr_match(&c, (struct sockaddr *)&a));
	assert_int_equal(lw_cidr_parse("10.1.2.3", &c), 0); /* one address */
	assert_int_equal(c.prefix, 32);
	assert_true(lw_cidr_match(&c, (struct sockaddr *)&a));
	assert_int_equal(lw_cidr_parse("10.1.3.0/23", &c), 0);
	assert_false(lw_cidr_host_bits_clear(&c));
	assert_int_equal(lw_cidr_parse("10.0.0.0/7", &c), 0);
	assert_true(lw_cidr_host_bits_clear(&c));
	assert_int_equal(lw_cidr_parse("10.0.0.0/33", &c), -1);
	assert_int_equal(lw_cidr_parse("10.0.0.0/", &c), -1);
	assert_int_equal(lw_cidr_parse("nohost/8", &c), -1);
}

static void test_decide(void **state)
{
	static const uid_t uids[] = {1001};
	struct lw_cidr from;
	struct lw_mserver_opts o = {.allow_uids = uids, .n_allow_uids = 1};
	struct sockaddr_storage lo = sa("127.0.0.1:40000"), far = sa("10.0.0.7:40000"),
				other = sa("192.168.1.1:40000");

	(void)state;
	/* local sockets: by owner */
	assert_int_equal(lw_mserver_decide(&o, 0, 0, (struct sockaddr *)&lo), 0);
	assert_int_equal(lw_mserver_decide(&o, 0, 1001, (struct sockaddr *)&lo), 0);
	assert_int_equal(lw_mserver_decide(&o, 0, 65534, (struct sockaddr *)&lo), 1);
	/* a local user reaching a non-loopback address is still a local user */
	assert_int_equal(lw_mserver_decide(&o, 0, 65534, (struct sockaddr *)&far), 1);
	/* no allow_from: nothing remote */
	assert_int_equal(lw_mserver_decide(&o, -ENOENT, 0, (struct sockaddr *)&far), 2);
	lw_cidr_parse("10.0.0.0/8", &from);
	o.allow_from = &from;
	o.n_allow_from = 1;
	assert_int_equal(lw_mserver_decide(&o, -ENOENT, 0, (struct sockaddr *)&far), 0);
	assert_int_equal(lw_mserver_decide(&o, -ENOENT, 0, (struct sockaddr *)&other), 2);
	/* unidentified: refused, loopback never counts as remote */
	assert_int_equal(lw_mserver_decide(&o, -ENOENT, 0, (struct sockaddr *)&lo), 3);
	assert_int_equal(lw_mserver_decide(&o, -EPERM, 0, (struct sockaddr *)&far), 3);
}

/* ---- the configuration keys ---- */

static int conf_of(const char *yaml, struct lw_agent_conf *c, struct lw_diag *d)
{
	char path[] = "/tmp/lw-metrics-conf-XXXXXX";
	int fd = mkstemp(path), n;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	n = lw_agent_conf_load(path, c, d);
	unlink(path);
	return n;
}

static void test_conf_keys(void **state)
{
	struct lw_agent_conf c;
	struct lw_diag d = {0};

	(void)state;
	assert_int_equal(conf_of("metrics:\n  listen: \"[::1]:9999\"\n  allow_uids: [root, 4242]\n"
				 "  allow_from: [10.0.0.0/8, fd00::/8, 192.0.2.7]\n",
				 &c, &d),
			 0);
	assert_string_equal(c.metrics_listen, "[::1]:9999");
	assert_int_equal(c.n_metrics_uids, 2);
	assert_int_equal(c.metrics_uids[0], 0);
	assert_int_equal(c.metrics_uids[1], 4242);
	assert_int_equal(c.n_metrics_from, 3);
	assert_int_equal(c.metrics_from[2].prefix, 32);
	lw_agent_conf_free(&c);
	assert_int_equal(conf_of("metrics: {listen: off, allow_uids: 7}\n", &c, &d), 0);
	assert_string_equal(c.metrics_listen, "off");
	assert_int_equal(c.n_metrics_uids, 1);
	lw_agent_conf_free(&c);
	/* every bad value is a FILE:LINE error, the good ones around it kept */
	assert_int_equal(
		conf_of("metrics:\n  listen: 127.0.0.1\n  allow_uids: [no-such-user-q, 5]\n"
			"  allow_from: [10.0.0.1/8, nonsense]\n  port: 9\n",
			&c, &d),
		5);
	assert_non_null(strstr(d.msgs[0], ":5: metrics: unknown key 'port'"));
	assert_non_null(strstr(d.msgs[1], ":2: listen:"));
	assert_non_null(strstr(d.msgs[2], ":3: allow_uids: no user 'no-such-user-q'"));
	assert_non_null(strstr(d.msgs[3], ":4: allow_from: '10.0.0.1/8'"));
	assert_non_null(strstr(d.msgs[4], ":4: allow_from: 'nonsense'"));
	assert_int_equal(c.n_metrics_uids, 1);
	assert_int_equal(c.n_metrics_from, 0);
	lw_agent_conf_free(&c);
	lw_diag_free(&d);
}

/* ---- tallies ---- */

static void sum_row(const char *const k[LW_TALLY_KEYS], uint64_t n, void *ud)
{
	uint64_t *v = ud;

	if (!strcmp(k[0], "ab") && !strcmp(k[1], ""))
		v[0] += n;
	else if (!strcmp(k[0], "a") && !strcmp(k[1], "b"))
		v[1] += n;
	v[2]++;
}

static void test_tally(void **state)
{
	struct lw_tally t = {0};
	uint64_t v[3] = {0};

	(void)state;
	lw_tally_add(&t, "ab", "", NULL, 1);
	lw_tally_add(&t, "a", "b", NULL, 2);
	lw_tally_add(&t, "ab", NULL, "", 3);
	lw_tally_each(&t, sum_row, v);
	assert_int_equal(v[0], 4);
	assert_int_equal(v[1], 2);
	assert_int_equal(v[2], 2);
	lw_tally_free(&t);
}

/* ---- the server on a real loopback socket ---- */

static void render(struct lw_metrics *m, void *ud)
{
	int *calls = ud;

	(*calls)++;
	lw_metrics_family(m, "lw_test_total", LW_METRIC_COUNTER, "t");
	lw_metrics_u64(m, 5, "k", "v", NULL);
}

struct srv {
	struct lw_mserver *s;
	uid_t me;
	int calls;
	char addr[64];
};

static int srv_setup(void **state)
{
	struct srv *t = calloc(1, sizeof(*t));
	struct lw_mserver_opts o = {.render = render};
	char err[256];

	t->me = geteuid(); /* whoever runs the tests may read */
	o.allow_uids = &t->me;
	o.n_allow_uids = 1;
	o.ud = &t->calls;
	/* a free port: ask the kernel, then take it */
	for (int i = 0; i < 20 && !t->s; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_addr.s_addr = htonl(0x7f000001)};
		socklen_t l = sizeof(a);

		bind(fd, (struct sockaddr *)&a, sizeof(a));
		getsockname(fd, (struct sockaddr *)&a, &l);
		close(fd);
		snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%u", ntohs(a.sin_port));
		o.listen = t->addr;
		t->s = lw_mserver_open(&o, err, sizeof(err));
	}
	assert_non_null(t->s);
	*state = t;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv *t = *state;

	lw_mserver_close(t->s);
	free(t);
	return 0;
}

/* Turns of the agent's loop, on a fake clock, until the client sees EOF. */
static void drive(struct srv *t, int client, uint64_t *now, uint64_t step_ns, struct lw_buf *got)
{
	for (int turn = 0; turn < 400; turn++) {
		struct pollfd pf[LW_MSERVER_CONNS + 2];
		int n = lw_mserver_pollfds(t->s, pf, LW_MSERVER_CONNS + 1);
		char buf[4096];
		ssize_t k;

		poll(pf, (nfds_t)n, 5);
		*now += step_ns;
		lw_mserver_handle(t->s, pf, n, *now);
		while ((k = recv(client, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			lw_buf_put(got, buf, (size_t)k);
		if (k == 0)
			return;
	}
	fail_msg("the server never closed the connection");
}

static int connect_to(const char *addr)
{
	struct sockaddr_storage ss = sa(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(connect(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)), 0);
	return fd;
}

static void request(struct srv *t, const char *req, struct lw_buf *got, uint64_t step_ns)
{
	int c = connect_to(t->addr);
	uint64_t now = 1000;

	if (req)
		assert_int_equal(send(c, req, strlen(req), 0), (ssize_t)strlen(req));
	drive(t, c, &now, step_ns, got);
	lw_buf_putc(got, 0);
	close(c);
}

static void test_server_scrape(void **state)
{
	struct srv *t = *state;
	struct lw_buf got = {0};
	struct lw_mserver_stats st;

	request(t, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &got, 1000);
	assert_true(!strncmp(got.p, "HTTP/1.1 200 OK\r\n", 17));
	assert_non_null(strstr(got.p, "Content-Type: " LW_METRICS_CONTENT_TYPE "\r\n"));
	assert_non_null(strstr(got.p, "\r\n\r\n# HELP lw_test_total t\n# TYPE lw_test_total "
				      "counter\nlw_test_total{k=\"v\"} 5\n"));
	lw_buf_reset(&got);
	request(t, "GET /stats HTTP/1.0\r\n\r\n", &got, 1000);
	assert_non_null(strstr(got.p, "application/json"));
	assert_non_null(strstr(got.p, "\"value\":5"));
	lw_buf_reset(&got);
	request(t, "GET /nope HTTP/1.1\r\n\r\n", &got, 1000);
	assert_true(!strncmp(got.p, "HTTP/1.1 404", 12));
	lw_buf_reset(&got);
	request(t, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &got, 1000);
	assert_true(!strncmp(got.p, "HTTP/1.1 405", 12));
	lw_mserver_stats(t->s, &st);
	assert_int_equal(st.responses[LW_MS_200], 2);
	assert_int_equal(st.responses[LW_MS_404], 1);
	assert_int_equal(st.responses[LW_MS_405], 1);
	assert_int_equal(t->calls, 2);
	lw_buf_free(&got);
}

/* A request that never ends is cut at LW_MSERVER_REQ_MAX: 431. */
static void test_server_oversized(void **state)
{
	struct srv *t = *state;
	struct lw_buf got = {0}, req = {0};

	lw_buf_puts(&req, "GET /metrics HTTP/1.1\r\nX: ");
	for (int i = 0; i < LW_MSERVER_REQ_MAX; i++)
		lw_buf_putc(&req, 'a');
	lw_buf_putc(&req, 0);
	request(t, req.p, &got, 1000);
	assert_true(!strncmp(got.p, "HTTP/1.1 431", 12));
	assert_int_equal(t->calls, 0);
	lw_buf_free(&got);
	lw_buf_free(&req);
}

/* A client that connects and says nothing is dropped at the deadline, and
 * meanwhile another is served. */
static void test_server_silent_client(void **state)
{
	struct srv *t = *state;
	struct lw_buf got = {0};
	struct lw_mserver_stats st;
	int silent = connect_to(t->addr);

	request(t, "GET /metrics HTTP/1.1\r\n\r\n", &got, 1000);
	assert_true(!strncmp(got.p, "HTTP/1.1 200", 12));
	lw_buf_reset(&got);
	{
		uint64_t now = 1000;

		/* 10 ms a turn: past 3 s within the turns drive allows */
		drive(t, silent, &now, 10000000ULL, &got);
	}
	assert_int_equal(got.len, 0);
	lw_mserver_stats(t->s, &st);
	assert_int_equal(st.responses[LW_MS_408], 1);
	close(silent);
	lw_buf_free(&got);
}

static void test_server_refuses_nonloopback_without_allow(void **state)
{
	struct lw_mserver_opts o = {.listen = "0.0.0.0:9", .render = render};
	char err[256];

	(void)state;
	assert_null(lw_mserver_open(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "allow_from"));
	o.listen = "nonsense";
	assert_null(lw_mserver_open(&o, err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_exact),
		cmocka_unit_test(test_family_continued),
		cmocka_unit_test(test_empty_family),
		cmocka_unit_test(test_escape_label_values),
		cmocka_unit_test(test_escape_help),
		cmocka_unit_test(test_escape_invalid_utf8),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_integers_exact),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_tally),
		cmocka_unit_test(test_conf_keys),
		cmocka_unit_test_setup_teardown(test_server_scrape, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_oversized, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_silent_client, srv_setup, srv_teardown),
		cmocka_unit_test(test_server_refuses_nonloopback_without_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
