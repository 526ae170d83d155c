/* leakwatch scan: the agent's decoder and classifier, offline, over files.
 * A file holding an HTTP request (or several, or an HTTP/2 client stream) is
 * decoded as the agent would decode it on the wire; anything else is taken
 * as a request body (gzip is recognised by its magic). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "act/alert.h"
#include "cmd/cmds.h"
#include "cmd/config.h"
#include "decode/request.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/log.h"

#define SCAN_MAX_FILE (64u << 20)

struct scan {
	bool json;
	struct lw_config *cfg;
	struct lw_classify_ctx *ctx;
	struct lw_decode_limits lim;
	struct lw_decode_stats dst;
	struct lw_findings one;   /* one request's findings */
	struct lw_findings total; /* the file's, merged by rule */
	const char *api;
	bool incomplete;
	bool error;
	struct lw_buf out;
};

static void usage(FILE *f)
{
	fputs("usage: leakwatch scan [--policy DIR] [--format text|json] [FILE...|-]\n"
	      "\n"
	      "Classify files with the agent's engine: the same decoders (HTTP/1.1, HTTP/2,\n"
	      "gzip/deflate, JSON prompt extraction) and the same rules. A file may be a\n"
	      "request body (JSON or text, gzip recognised) or a captured HTTP request\n"
	      "stream. Without FILE, or with -, reads standard input.\n"
	      "\n"
	      "      --policy DIR      rules from DIR/rules/*.yaml and lists from DIR/lists/*.yaml\n"
	      "                        on top of the built-in rules (default: /etc/leakwatch/\n"
	      "                        policies if present, else ./policies if present, else\n"
	      "                        the built-in rules alone)\n"
	      "      --format FMT      text (default) or json: one line per file,\n"
	      "                        {\"file\",\"findings\":[{type,rule,count,severity,sample}]}\n"
	      "  -h, --help            this help\n"
	      "\n"
	      "Samples are masked; raw values are never printed.\n"
	      "Exit codes: 0 nothing found, 1 findings (or a file could not be read), 2 usage.\n",
	      f);
}

/* Adds one request's findings into the file's, one entry per rule. */
static void merge(struct lw_findings *total, const struct lw_findings *one)
{
	for (size_t i = 0; i < one->n; i++) {
		const struct lw_finding *x = &one->v[i];
		size_t k;

		for (k = 0; k < total->n; k++)
			if (total->v[k].rule == x->rule)
				break;
		if (k < total->n) {
			total->v[k].count += x->count;
			continue;
		}
		if (total->n == total->cap) {
			total->cap = total->cap ? 2 * total->cap : 8;
			total->v = lw_xrealloc(total->v, total->cap * sizeof(*total->v));
		}
		total->v[total->n++] = *x;
	}
}

static void classify_text(struct scan *s, const struct lw_prompt *p)
{
	if (lw_classify(s->ctx, p->text.p ? p->text.p : "", p->text.len, &s->one) < 0) {
		s->error = true;
		return;
	}
	merge(&s->total, &s->one);
	if (!s->api || strcmp(s->api, "text") == 0)
		s->api = lw_api_name(p->api);
}

static void on_request(const struct lw_decoded_req *r, void *ud)
{
	struct scan *s = ud;

	s->incomplete |= r->incomplete;
	classify_text(s, r->prompt);
}

static int read_all(FILE *f, struct lw_buf *b, bool *cut)
{
	char tmp[65536];
	size_t n;

	*cut = false;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (b->len + n > SCAN_MAX_FILE) {
			lw_buf_put(b, tmp, SCAN_MAX_FILE - b->len);
			*cut = true;
			break;
		}
		lw_buf_put(b, tmp, n);
	}
	return ferror(f) ? -1 : 0;
}

static void scan_bytes(struct scan *s, const char *data, size_t n)
{
	enum lw_http_kind k = lw_http_sniff(data, n);

	if (k == LW_HTTP_1 || k == LW_HTTP_2) {
		struct lw_request_decoder *d =
			lw_request_decoder_new(&s->lim, &s->dst, on_request, s);
		uint64_t before = s->dst.requests;

		lw_request_decoder_feed(d, data, n, false);
		lw_request_decoder_finish(d);
		lw_request_decoder_free(d);
		if (s->dst.requests != before)
			return;
		/* looked like HTTP but held no request: scan it as text */
	}
	{
		struct lw_buf body = { 0 };
		struct lw_prompt p;
		bool gz = n >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b;

		/* only a gzip file needs a decoded copy: the rest is read in place */
		if (gz) {
			if (lw_inflate("gzip", data, n, &s->lim.inflate, &body) != LW_INFLATE_OK)
				s->incomplete = true;
			data = body.p ? body.p : "";
			n = body.len;
		}
		lw_prompt_init(&p);
		lw_prompt_extract(&p, "", "", data, n, s->lim.max_text);
		s->incomplete |= p.limited;
		classify_text(s, &p);
		lw_prompt_free(&p);
		lw_buf_free(&body);
	}
}

static void report(struct scan *s, const char *name, const char *err)
{
	lw_buf_reset(&s->out);
	if (s->json) {
		struct lw_json j;

		lw_json_begin(&j, &s->out);
		lw_json_str(&j, "file", name);
		if (err)
			lw_json_str(&j, "error", err);
		if (s->api)
			lw_json_str(&j, "api", s->api);
		if (s->incomplete)
			lw_json_bool(&j, "incomplete", true);
		lw_findings_json(&j, "findings", &s->total, NULL);
		lw_json_end(&j);
		lw_buf_putc(&s->out, '\n');
	} else if (err) {
		lw_buf_printf(&s->out, "%s: error: %s\n", name, err);
	} else if (!s->total.n) {
		lw_buf_printf(&s->out, "%s: nothing found\n", name);
	} else {
		for (size_t i = 0; i < s->total.n; i++) {
			const struct lw_finding *x = &s->total.v[i];

			lw_buf_printf(&s->out, "%s: %-8s %-20s x%-4u %-22s %s\n", name,
				      lw_severity_str(x->severity), x->type, x->count, x->rule,
				      x->sample);
		}
	}
	fwrite(s->out.p, 1, s->out.len, stdout);
}

static int scan_file(struct scan *s, const char *path)
{
	bool stdin_ = strcmp(path, "-") == 0, cut = false;
	const char *name = stdin_ ? "(stdin)" : path;
	struct lw_buf data = { 0 };
	FILE *f = stdin_ ? stdin : fopen(path, "rb");
	int rc;

	s->total.n = 0;
	s->api = NULL;
	s->incomplete = false;
	s->error = false;
	if (!f) {
		report(s, name, strerror(errno));
		fprintf(stderr, "leakwatch scan: %s: %s\n", name, strerror(errno));
		return -1;
	}
	rc = read_all(f, &data, &cut);
	if (!stdin_)
		fclose(f);
	if (rc) {
		report(s, name, "read error");
		fprintf(stderr, "leakwatch scan: %s: read error\n", name);
		lw_buf_free(&data);
		return -1;
	}
	if (cut) {
		fprintf(stderr, "leakwatch scan: %s: only the first %u MiB scanned\n", name,
			SCAN_MAX_FILE >> 20);
		s->incomplete = true;
	}
	scan_bytes(s, data.p ? data.p : "", data.len);
	lw_buf_free(&data);
	report(s, name, s->error ? "classifier error" : NULL);
	return s->error ? -1 : 0;
}

int lw_cmd_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, 0, 'P' },
		{ "format", required_argument, 0, 'F' },
		{ "help", no_argument, 0, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct scan s = { 0 };
	const char *dir = NULL;
	bool dir_given = false, found = false, failed = false;
	struct lw_diag d = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'P':
			dir = optarg;
			dir_given = true;
			break;
		case 'F':
			if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
				fprintf(stderr, "leakwatch scan: --format is text or json\n");
				return 2;
			}
			s.json = strcmp(optarg, "json") == 0;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!dir_given) {
		struct stat st;

		dir = lw_config_default_dir();
		/* outside a checkout and without /etc: the built-in rules */
		if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
			dir = NULL;
	}
	s.cfg = lw_config_load_rules(dir, &d);
	if (!s.cfg) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "%s\n", d.msgs[i]);
		fprintf(stderr, "leakwatch scan: the rules in %s are not valid\n",
			dir ? dir : "(built-in)");
		lw_diag_free(&d);
		return 1;
	}
	lw_diag_free(&d);
	s.ctx = lw_classify_ctx_new(s.cfg->cls);
	lw_decode_limits_default(&s.lim);
	if (optind == argc) {
		failed |= scan_file(&s, "-") < 0;
		found |= s.total.n > 0;
	}
	for (int i = optind; i < argc; i++) {
		failed |= scan_file(&s, argv[i]) < 0;
		found |= s.total.n > 0;
	}
	fflush(stdout);
	lw_classify_ctx_free(s.ctx);
	lw_findings_free(&s.one);
	free(s.total.v);
	lw_buf_free(&s.out);
	lw_config_free(s.cfg);
	return found || failed ? 1 : 0;
}
