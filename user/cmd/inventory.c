/* leakwatch inventory: which services use which AI providers, models and
 * endpoints, from the agent's store (user/act/inventory.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "act/inventory.h"
#include "act/store.h"
#include "cmd/cmds.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/json.h"

static void usage(FILE *f)
{
	fputs("usage: leakwatch inventory [--format table|json] [--db PATH]\n"
	      "\n"
	      "The AI usage the agent observed: per service, provider, model and endpoint\n"
	      "(method and path), the requests, bytes sent and received, findings, and when\n"
	      "it was first and last seen. Providers a service reached over TLS that could\n"
	      "not be read (no decoded request) are listed as opaque, with their connections.\n"
	      "\n"
	      "      --format F  table (default, fits 80 columns) or json (one object a line)\n"
	      "      --db PATH   the agent's store (default " LW_STORE_DEFAULT_PATH ")\n"
	      "  -h, --help      this help\n"
	      "\n"
	      "Exit codes: 0 ok, 1 the store cannot be read, 2 usage error.\n",
	      f);
}

struct out {
	FILE *f;
	bool json;
	size_t n;
	struct lw_buf b;
};

/* "12.3M": byte counts in a narrow column */
static void human(uint64_t v, char *s, size_t n)
{
	static const char u[] = "BKMGTP";
	double d = (double)v;
	int i = 0;

	while (d >= 1000 && i < 5) {
		d /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(s, n, "%llu", (unsigned long long)v);
	else
		snprintf(s, n, "%.*f%c", d < 10 ? 1 : 0, d, u[i]);
}

/* s cut to w columns with an ellipsis (bytes: names are ASCII in practice) */
static void cell(FILE *f, const char *s, int w)
{
	int n = (int)strlen(s);

	if (n <= w)
		fprintf(f, "%-*s", w, s);
	else
		fprintf(f, "%.*s~", w - 1, s);
}

static bool row(const struct lw_inv_row *r, bool opaque, void *ud)
{
	struct out *o = ud;
	char first[48], last[48];

	lw_iso_time(r->first_ns, first, sizeof(first));
	lw_iso_time(r->last_ns, last, sizeof(last));
	if (o->json) {
		struct lw_json j;

		lw_buf_reset(&o->b);
		lw_json_begin(&j, &o->b);
		lw_json_str(&j, "service", r->service);
		lw_json_str(&j, "provider", r->provider);
		lw_json_str(&j, "model", r->model);
		lw_json_str(&j, "endpoint", r->endpoint);
		lw_json_bool(&j, "opaque", opaque);
		lw_json_u64(&j, "requests", r->requests);
		lw_json_u64(&j, "connections", r->connections);
		lw_json_u64(&j, "refused", r->refused);
		lw_json_u64(&j, "bytes_out", r->bytes_out);
		lw_json_u64(&j, "bytes_in", r->bytes_in);
		lw_json_u64(&j, "findings", r->findings);
		lw_json_str(&j, "first_seen", first);
		lw_json_str(&j, "last_seen", last);
		lw_json_end(&j);
		fprintf(o->f, "%s\n", o->b.p);
	} else {
		char out[16], in[16], ep[LW_INV_FIELD + 16];

		if (!o->n)
			fprintf(o->f, "%-10s %-9s %-11s %-13s %5s %5s %5s %3s %s\n", "SERVICE",
				"PROVIDER", "MODEL", "ENDPOINT", "REQS", "OUT", "IN", "FND",
				"LAST SEEN");
		human(r->bytes_out, out, sizeof(out));
		human(r->bytes_in, in, sizeof(in));
		if (opaque && r->refused)
			snprintf(ep, sizeof(ep), "opaque %llu cx %llu refused",
				 (unsigned long long)r->connections,
				 (unsigned long long)r->refused);
		else if (opaque)
			snprintf(ep, sizeof(ep), "opaque %llu cx",
				 (unsigned long long)r->connections);
		else if (!r->endpoint[0])
			snprintf(ep, sizeof(ep), "(%llu cx)", (unsigned long long)r->connections);
		else
			snprintf(ep, sizeof(ep), "%s", r->endpoint);
		/* 80 columns: the json format has every field whole */
		cell(o->f, r->service, 10);
		fputc(' ', o->f);
		cell(o->f, r->provider, 9);
		fputc(' ', o->f);
		cell(o->f, r->model[0] ? r->model : "-", 11);
		fputc(' ', o->f);
		cell(o->f, ep, 13);
		/* "2026-11-26T07:12:03.123Z" -> "11-26 07:12" */
		fprintf(o->f, " %5llu %5s %5s %3llu %.5s %.5s\n", (unsigned long long)r->requests,
			out, in, (unsigned long long)r->findings, last + 5, last + 11);
	}
	o->n++;
	return true;
}

int lw_cmd_inventory(int argc, char **argv)
{
	static const struct option opts[] = {
		{"format", required_argument, 0, 'f'},
		{"db", required_argument, 0, 'd'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *db = LW_STORE_DEFAULT_PATH;
	struct out o = {.f = stdout};
	struct lw_store *s;
	char err[512];
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "table") && strcmp(optarg, "json")) {
				fprintf(stderr, "leakwatch inventory: --format is table or json\n");
				return 2;
			}
			o.json = !strcmp(optarg, "json");
			break;
		case 'd':
			db = optarg;
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
		fprintf(stderr, "leakwatch inventory: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	s = lw_store_open(db, true, err, sizeof(err));
	if (!s) {
		fprintf(stderr, "leakwatch inventory: %s\n", err);
		return 1;
	}
	rc = lw_store_inventory_each(s, row, &o);
	if (rc != 0)
		fprintf(stderr, "leakwatch inventory: %s: %s\n", db, lw_store_errmsg(s));
	else if (!o.n && !o.json)
		printf("no AI usage recorded yet in %s\n", db);
	lw_store_close(s);
	lw_buf_free(&o.b);
	return rc ? 1 : 0;
}
