/*
 * Classifier throughput on 16 KiB JSON request bodies, one core (issue 4).
 *
 *   classify_bench PROSE_DIR CORPUS_DIR OUTDIR [SECONDS]
 *
 * Builds 16 KiB OpenAI chat bodies in two mixes:
 *   typical: ~15 KiB of prose (PROSE_DIR, e.g. /usr/share/common-licenses)
 *            followed by one labelled-corpus body (a ticket, a log, a config
 *            with a key...): a long prompt that leaks something;
 *   dense:   the labelled corpus alone, back to back: a finding or a near
 *            miss every ~100 bytes, the worst case for validation;
 * and for each times
 *   1. lw_classify over the raw JSON bodies (the engine alone),
 *   2. prompt extraction (jansson) + lw_classify (what the agent does per
 *      request body).
 * Writes OUTDIR/bodies.txt (one body per line) and OUTDIR/patterns.txt (the
 * rules' patterns) for the reference run in tools/bench-classify.sh.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classify/classify.h"
#include "classify/rules.h"
#include "decode/prompt.h"
#include "util/buf.h"
#include "util/json.h"

#define BODY 16384
#define NBODIES 512

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file's text, concatenated; offs[i] is where file i starts. */
static size_t load_dir(const char *dir, struct lw_buf *all, size_t *offs, size_t max)
{
	char path[4096], *names[4096];
	size_t n = 0;
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((de = readdir(d)) && n < 4096)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp);
	for (size_t i = 0; i < n; i++) {
		FILE *f;
		char tmp[65536];
		size_t k;

		if (i < max)
			offs[i] = all->len;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		f = fopen(path, "rb");
		if (f) {
			while ((k = fread(tmp, 1, sizeof(tmp), f)) > 0)
				lw_buf_put(all, tmp, k);
			fclose(f);
			lw_buf_putc(all, '\n');
		}
		free(names[i]);
	}
	if (!all->len) {
		fprintf(stderr, "classify_bench: %s holds no files\n", dir);
		exit(1);
	}
	return n < max ? n : max;
}

/* A chat body of exactly BODY bytes whose user content is `tail_text` at
 * the end, preceded by the text of `all` from *off on (wrapping), all
 * JSON-escaped. */
static void make_body(const struct lw_buf *all, size_t *off, const char *tail_text,
		      size_t tail_len, struct lw_buf *out)
{
	static const char head[] = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"system\","
				   "\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\","
				   "\"content\":";
	static const char tail[] = "}]}";
	struct lw_buf s = { 0 }, t = { 0 };

	lw_buf_reset(out);
	lw_buf_put(out, head, sizeof(head) - 1);
	lw_json_quote(&t, tail_text, tail_len);
	while (1) {
		size_t take = 64;

		if (*off + take > all->len)
			take = all->len - *off;
		lw_buf_reset(&s);
		lw_json_quote(&s, all->p + *off, take);
		/* the closing quote is part of s; stop before passing BODY */
		if (out->len + s.len + t.len + sizeof(tail) - 1 > BODY)
			break;
		*off = (*off + take) % all->len;
		/* append the string's contents so far without its quotes, as
		 * one string: write the opening quote once */
		if (out->p[out->len - 1] == ':')
			lw_buf_putc(out, '"');
		lw_buf_put(out, s.p + 1, s.len - 2);
	}
	if (out->p[out->len - 1] == ':')
		lw_buf_putc(out, '"');
	lw_buf_put(out, t.p + 1, t.len - 2);
	lw_buf_putc(out, '"');
	lw_buf_put(out, tail, sizeof(tail) - 1);
	while (out->len < BODY) { /* pad with spaces: still valid JSON */
		memmove(out->p + out->len - 3 + 1, out->p + out->len - 3, 3);
		out->p[out->len - 3] = ' ';
		out->len++;
	}
	lw_buf_free(&s);
	lw_buf_free(&t);
}

static double run(struct lw_classify_ctx *x, struct lw_findings *f, char **bodies, double secs,
		  bool extract, struct lw_prompt *p)
{
	uint64_t iters = 0;
	double t0 = now(), t;

	do {
		for (int i = 0; i < NBODIES; i++) {
			if (extract) {
				lw_prompt_extract(p, "/v1/chat/completions", "application/json",
						  bodies[i], BODY, 4u << 20);
				lw_classify(x, p->text.p, p->text.len, f);
			} else {
				lw_classify(x, bodies[i], BODY, f);
			}
		}
		iters++;
		t = now() - t0;
	} while (t < secs);
	return iters * NBODIES * (double)BODY / t / 1e6;
}

int main(int argc, char **argv)
{
	struct lw_ruleset rs = { 0 };
	struct lw_diag d = { 0 };
	struct lw_classifier *c;
	struct lw_classify_ctx *x;
	struct lw_findings f = { 0 };
	struct lw_buf prose = { 0 }, corpus = { 0 }, body = { 0 }, path = { 0 };
	struct lw_prompt p;
	static size_t offs[4096];
	char *typical[NBODIES], *dense[NBODIES];
	double secs = argc > 4 ? atof(argv[4]) : 3.0;
	uint64_t nf_typical = 0, nf_dense = 0;
	size_t off = 0, ncorpus;
	FILE *out;

	if (argc < 4) {
		fprintf(stderr, "usage: classify_bench PROSE_DIR CORPUS_DIR OUTDIR [SECONDS]\n");
		return 2;
	}
	if (lw_rules_load(&rs, NULL, &d) || !(c = lw_classifier_new(&rs, &d))) {
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "%s\n", d.msgs[i]);
		return 1;
	}
	x = lw_classify_ctx_new(c);
	load_dir(argv[1], &prose, offs, 0);
	ncorpus = load_dir(argv[2], &corpus, offs, 4096);
	for (int i = 0; i < NBODIES; i++) {
		size_t k = (size_t)i % ncorpus;
		size_t end = k + 1 < ncorpus ? offs[k + 1] : corpus.len;

		make_body(&prose, &off, corpus.p + offs[k], end - offs[k], &body);
		typical[i] = lw_xmalloc(BODY);
		memcpy(typical[i], body.p, BODY);
	}
	off = 0;
	for (int i = 0; i < NBODIES; i++) {
		make_body(&corpus, &off, "", 0, &body);
		dense[i] = lw_xmalloc(BODY);
		memcpy(dense[i], body.p, BODY);
	}

	/* the same bytes for the reference run */
	lw_buf_printf(&path, "%s/bodies.txt", argv[3]);
	out = fopen(path.p, "w");
	for (int i = 0; out && i < NBODIES; i++) {
		fwrite(typical[i], 1, BODY, out);
		fputc('\n', out);
	}
	if (out)
		fclose(out);
	lw_buf_reset(&path);
	lw_buf_printf(&path, "%s/patterns.txt", argv[3]);
	out = fopen(path.p, "w");
	for (size_t i = 0; out && i < rs.n; i++)
		if (rs.rules[i].action != LW_ACT_OFF)
			fprintf(out, "%s\n", rs.rules[i].pattern);
	if (out)
		fclose(out);

	for (int i = 0; i < NBODIES; i++) {
		nf_typical += (uint64_t)lw_classify(x, typical[i], BODY, &f);
		nf_dense += (uint64_t)lw_classify(x, dense[i], BODY, &f);
	}
	printf("rules: %zu, lists: %zu; %d bodies of %d bytes per mix; findings (rules matched) "
	       "per body: typical %.2f, dense %.2f\n",
	       rs.n, rs.nlists, NBODIES, BODY, (double)nf_typical / NBODIES,
	       (double)nf_dense / NBODIES);
	lw_prompt_init(&p);
	printf("typical: classify on raw JSON bodies: %.1f MB/s\n", run(x, &f, typical, secs, false, &p));
	printf("typical: prompt extraction + classify: %.1f MB/s\n", run(x, &f, typical, secs, true, &p));
	printf("dense: classify on raw JSON bodies: %.1f MB/s\n", run(x, &f, dense, secs, false, &p));
	printf("dense: prompt extraction + classify: %.1f MB/s\n", run(x, &f, dense, secs, true, &p));

	lw_prompt_free(&p);
	for (int i = 0; i < NBODIES; i++) {
		free(typical[i]);
		free(dense[i]);
	}
	lw_findings_free(&f);
	lw_classify_ctx_free(x);
	lw_classifier_free(c);
	lw_rules_free(&rs);
	lw_diag_free(&d);
	lw_buf_free(&prose);
	lw_buf_free(&corpus);
	lw_buf_free(&body);
	lw_buf_free(&path);
	return 0;
}
