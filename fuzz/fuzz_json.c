/*
 * libFuzzer target for lw_prompt_extract. The first byte picks the request
 * path, content type and text limit; the rest is the body. Checked: the text
 * never exceeds the limit, segments are non-empty and tile the text each
 * followed by a newline, lw_prompt_seg_at agrees with them, fields are
 * terminated, the counters agree with the flags, and the path's query (where
 * Gemini carries its key) never reaches the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode/prompt.h"

#define QUERY_KEY "QUERYKEYqueryKEY"

static const char *const paths[] = {
	"/v1/chat/completions",
	"/v1/responses",
	"/v1/completions",
	"/v1/embeddings",
	"/v1/messages",
	"/v1beta/models/gemini-1.5-pro:generateContent?key=" QUERY_KEY,
	"/v1beta/models/m:streamGenerateContent?alt=sse&key=" QUERY_KEY,
	"",
};

static const char *const types[] = {"application/json", "", "text/plain", "application/x-ndjson"};

static const size_t limits[] = {1u << 20, 0, 1, 7, 64, 300};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lw_prompt p;
	size_t max_text, off = 0;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	max_text = limits[(sel >> 5) % (sizeof(limits) / sizeof(limits[0]))];
	lw_prompt_init(&p);
	/* twice on one struct: a reset must leave nothing behind */
	for (int round = 0; round < 2; round++) {
		lw_prompt_extract(&p, paths[sel % 8], types[(sel >> 3) % 4], data, size, max_text);
		if (p.text.len > max_text || p.nsegs > LW_PROMPT_MAX_SEGS || p.nsegs > p.cap)
			abort();
		if (!lw_api_name(p.api) || strnlen(p.model, sizeof(p.model)) == sizeof(p.model))
			abort();
		if (p.text_dropped && !p.limited)
			abort();
		if (p.merged_segs && p.nsegs != LW_PROMPT_MAX_SEGS)
			abort();
		off = 0;
		for (size_t i = 0; i < p.nsegs; i++) {
			const struct lw_prompt_seg *s = &p.segs[i];

			if (s->off != off || s->len == 0 || s->off + s->len >= p.text.len ||
			    p.text.p[s->off + s->len] != '\n')
				abort();
			if (strnlen(s->field, sizeof(s->field)) == sizeof(s->field))
				abort();
			if (lw_prompt_seg_at(&p, s->off) != s ||
			    lw_prompt_seg_at(&p, s->off + s->len) != s)
				abort();
			off = s->off + s->len + 1;
		}
		if (off != p.text.len || lw_prompt_seg_at(&p, p.text.len))
			abort();
		if (p.text.len && memmem(p.text.p, p.text.len, QUERY_KEY, strlen(QUERY_KEY)) &&
		    !memmem(data, size, QUERY_KEY, strlen(QUERY_KEY)))
			abort();
	}
	lw_prompt_free(&p);
	return 0;
}
