#include "decode/prompt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "util/hmap.h"

/* The lenient pass remembers the keys of this many open containers; deeper ones read "*". */
#define LENIENT_DEPTH 64
/* Key-based binary skipping needs this much base64 before it calls a value binary: shorter
 * values are cheap to scan and could be a secret hidden in a "data" field. */
#define BINARY_MIN 64

/* A field path, cut at the size of lw_prompt_seg.field. */
struct path {
	char s[LW_PROMPT_FIELD_MAX];
	size_t len;
};

struct frame {
	json_t *node;
	void *iter; /* objects: the next member */
	size_t idx; /* arrays: the next element */
	size_t pathlen;
};

struct ctx {
	struct lw_prompt *p;
	size_t max_text;
	bool known;	     /* a recognised API: enum-like keys are skipped, prompt keys marked */
	struct lw_hmap done; /* json_t * taken by the prompt pass: the full walk skips them */
	struct frame *st;
	size_t nst, capst;
	struct lw_buf tmp;
};

const char *lw_api_name(enum lw_api a)
{
	switch (a) {
	case LW_API_TEXT:
		return "text";
	case LW_API_JSON:
		return "json";
	case LW_API_OPENAI_CHAT:
		return "openai.chat";
	case LW_API_OPENAI_RESPONSES:
		return "openai.responses";
	case LW_API_OPENAI_COMPLETIONS:
		return "openai.completions";
	case LW_API_ANTHROPIC_MESSAGES:
		return "anthropic.messages";
	case LW_API_GEMINI:
		return "gemini.generate";
	}
	return "unknown";
}

void lw_prompt_init(struct lw_prompt *p)
{
	memset(p, 0, sizeof(*p));
}

void lw_prompt_free(struct lw_prompt *p)
{
	lw_buf_free(&p->text);
	free(p->segs);
	memset(p, 0, sizeof(*p));
}

static void prompt_reset(struct lw_prompt *p)
{
	struct lw_buf text = p->text;
	struct lw_prompt_seg *segs = p->segs;
	size_t cap = p->cap;

	memset(p, 0, sizeof(*p));
	lw_buf_reset(&text);
	p->text = text;
	p->segs = segs;
	p->cap = cap;
}

/* ---- small helpers ----------------------------------------------------- */

static bool is_alpha(unsigned char c)
{
	return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A key that names a field ("content", "max_tokens", "$schema") rather than carrying data (an
 * email, a phone number, a token used as a map key): data keys are scanned and masked in paths,
 * so a field never repeats content into alerts. */
static bool key_is_name(const char *k, size_t n)
{
	size_t digits = 0, lower = 0;

	if (n == 0 || n > 32)
		return false;
	if (!is_alpha(k[0]) && k[0] != '_' && k[0] != '$' && k[0] != '@')
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		if (is_digit(c))
			digits++;
		else if (c >= 'a' && c <= 'z')
			lower++;
		else if (!is_alpha(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	/* tokens have many digits, or are upper case (AKIA...) */
	return digits <= 4 && (lower || n <= 8);
}

static bool key_in(const char *k, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && memcmp(*list, k, n) == 0)
			return true;
	return false;
}

/* String values of these keys are API enums and opaque ids, never user data: skipped outside
 * prompt fields when the API is recognised (noise, and ids look like high-entropy tokens). */
static const char *const enum_keys[] = {
	"model",  "role", "type",	  "media_type",	 "mime_type", "mimeType",
	"detail", "id",	  "tool_call_id", "tool_use_id", "call_id",   NULL,
};

/* Keys whose strings are prompt text in some API: the lenient pass marks them prompt. */
static const char *const prompt_keys[] = {
	"content",   "text", "prompt", "input",	   "system",  "instructions",
	"arguments", "user", "output", "thinking", "refusal", NULL,
};

static bool is_b64(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/' && c != '=' && c != '-' &&
		    c != '_')
			return false;
	}
	return true;
}

/* "data:image/png;base64,iVBOR...": an inline file, not text. A data URL whose payload is not
 * base64 ("data:text/plain,hello") is text and is scanned. */
static bool is_data_url(const char *s, size_t n)
{
	const char *m;
	size_t head = n < 256 ? n : 256;

	if (n < 5 || strncasecmp(s, "data:", 5) != 0)
		return false;
	m = memmem(s, head, ";base64,", 8);
	if (!m)
		return false;
	m += 8;
	return is_b64(m, n - (size_t)(m - s));
}

static void path_cat(struct path *pa, const char *s, size_t n)
{
	size_t room = sizeof(pa->s) - 1 - pa->len;

	if (n > room)
		n = room;
	memcpy(pa->s + pa->len, s, n);
	pa->len += n;
	pa->s[pa->len] = 0;
}

static void path_set(struct path *pa, const char *s)
{
	pa->len = 0;
	path_cat(pa, s, strlen(s));
}

static void path_cut(struct path *pa, size_t len)
{
	pa->len = len;
	pa->s[len] = 0;
}

static void path_key(struct path *pa, const char *k, size_t n)
{
	if (pa->len)
		path_cat(pa, ".", 1);
	if (key_is_name(k, n))
		path_cat(pa, k, n);
	else
		path_cat(pa, "*", 1);
}

/* Decimal digits of v, written backwards from end; returns where they start. printf is the
 * bottleneck of bodies with millions of numbers. */
static char *u64_dec(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return end;
}

static void path_idx(struct path *pa, size_t i)
{
	char b[24], *s;

	b[sizeof(b) - 1] = ']';
	s = u64_dec(b + sizeof(b) - 1, i);
	*--s = '[';
	path_cat(pa, s, (size_t)(b + sizeof(b) - s));
}

static void set_model(struct lw_prompt *p, const char *s, size_t n)
{
	const char *nul = memchr(s, 0, n);

	if (nul)
		n = (size_t)(nul - s);
	if (n >= sizeof(p->model))
		n = sizeof(p->model) - 1;
	memcpy(p->model, s, n);
	p->model[n] = 0;
}

/* ---- the text ------------------------------------------------------------ */

static void add_seg(struct ctx *c, const char *field, bool prompt, const char *s, size_t n)
{
	struct lw_prompt *p = c->p;
	struct lw_prompt_seg *seg;
	size_t room, take = n;

	if (!n)
		return;
	if (p->limited) {
		p->text_dropped += n;
		return;
	}
	room = c->max_text > p->text.len ? c->max_text - p->text.len : 0;
	if (take + 1 > room) {
		p->limited = true;
		take = room ? room - 1 : 0;
		/* do not split a UTF-8 sequence (at most 3 continuation bytes back) */
		for (int k = 0; k < 3 && take > 0 && ((unsigned char)s[take] & 0xc0) == 0x80; k++)
			take--;
		p->text_dropped += n - take;
		if (!take)
			return;
	}
	if (p->nsegs == LW_PROMPT_MAX_SEGS) {
		/* the last segment grows over its newline to hold this one */
		seg = &p->segs[p->nsegs - 1];
		lw_buf_put(&p->text, s, take);
		lw_buf_putc(&p->text, '\n');
		seg->len = p->text.len - 1 - seg->off;
		seg->prompt |= prompt;
		if (!p->merged_segs)
			memcpy(seg->field, "(merged)", sizeof("(merged)"));
		p->merged_segs++;
		return;
	}
	if (p->nsegs == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		if (p->cap > LW_PROMPT_MAX_SEGS)
			p->cap = LW_PROMPT_MAX_SEGS;
		p->segs = lw_xrealloc(p->segs, p->cap * sizeof(*p->segs));
	}
	seg = &p->segs[p->nsegs++];
	seg->off = p->text.len;
	seg->len = take;
	seg->prompt = prompt;
	{
		size_t fl = strnlen(field, sizeof(seg->field) - 1);

		memcpy(seg->field, field, fl);
		seg->field[fl] = 0;
	}
	lw_buf_put(&p->text, s, take);
	lw_buf_putc(&p->text, '\n');
}

static void skip_binary(struct ctx *c, size_t n)
{
	c->p->skipped_binary++;
	c->p->skipped_binary_bytes += n;
}

static void add_int(struct ctx *c, const char *field, bool prompt, json_int_t v)
{
	char b[24], *s;

	/* the magnitude as unsigned: -INT64_MIN does not fit in an int64 */
	s = u64_dec(b + sizeof(b), v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
	if (v < 0)
		*--s = '-';
	add_seg(c, field, prompt, s, (size_t)(b + sizeof(b) - s));
}

/* ---- valid JSON: the full walk ------------------------------------------ */

static void mark(struct ctx *c, json_t *v)
{
	lw_hmap_put(&c->done, (uint64_t)(uintptr_t)v, v);
}

static bool is_done(const struct ctx *c, json_t *v)
{
	return c->done.len && lw_hmap_get(&c->done, (uint64_t)(uintptr_t)v);
}

static void scalar(struct ctx *c, json_t *v, const struct path *pa, bool prompt)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);

		if (is_data_url(s, n))
			skip_binary(c, n);
		else
			add_seg(c, pa->s, prompt, s, n);
	} else if (json_is_integer(v)) {
		add_int(c, pa->s, prompt, json_integer_value(v));
	}
}

/* {"mimeType": "image/png", "data": "iVBOR..."} (Gemini inlineData), {"type": "base64",
 * "media_type": ..., "data": ...} (Anthropic source), {"format": "wav", "data": ...} (OpenAI
 * input_audio), "file_data": base64 of a file. Anthropic's {"type": "text", "media_type":
 * "text/plain", "data": "..."} document source is text. */
static bool binary_member(json_t *obj, const char *k, size_t kn, json_t *v)
{
	const char *s;
	size_t n;

	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n < BINARY_MIN || !is_b64(s, n))
		return false;
	if (kn == 9 && memcmp(k, "file_data", 9) == 0)
		return true;
	if (kn != 4 || memcmp(k, "data", 4) != 0)
		return false;
	{
		const char *t = json_string_value(json_object_get(obj, "type"));

		if (t && strcmp(t, "text") == 0)
			return false;
	}
	return json_object_get(obj, "mimeType") || json_object_get(obj, "mime_type") ||
	       json_object_get(obj, "media_type") || json_object_get(obj, "format");
}

static void push(struct ctx *c, json_t *v, size_t pathlen)
{
	struct frame *f;

	if (c->nst == c->capst) {
		c->capst = c->capst ? c->capst * 2 : 32;
		c->st = lw_xrealloc(c->st, c->capst * sizeof(*c->st));
	}
	f = &c->st[c->nst++];
	f->node = v;
	f->iter = json_is_object(v) ? json_object_iter(v) : NULL;
	f->idx = 0;
	f->pathlen = pathlen;
}

/* Every value under v in document order, iteratively (jansson allows 2048 levels). prompt: v is
 * a prompt field, everything under it is prompt text; otherwise the prompt pass's values are
 * skipped and so are enum keys of a recognised API. */
static void walk(struct ctx *c, json_t *v, struct path *pa, bool prompt)
{
	size_t base = pa->len;

	if (!json_is_object(v) && !json_is_array(v)) {
		scalar(c, v, pa, prompt);
		return;
	}
	c->nst = 0;
	push(c, v, pa->len);
	while (c->nst) {
		struct frame *f = &c->st[c->nst - 1];
		json_t *child;

		path_cut(pa, f->pathlen);
		if (json_is_object(f->node)) {
			const char *k;
			size_t kn;
			json_t *obj = f->node;

			if (!f->iter) {
				c->nst--;
				continue;
			}
			k = json_object_iter_key(f->iter);
			kn = json_object_iter_key_len(f->iter);
			child = json_object_iter_value(f->iter);
			f->iter = json_object_iter_next(obj, f->iter);
			if (is_done(c, child))
				continue;
			path_key(pa, k, kn);
			if (!key_is_name(k, kn))
				add_seg(c, pa->s, prompt, k, kn);
			if (!prompt && c->known && json_is_string(child) &&
			    key_in(k, kn, enum_keys))
				continue;
			if (binary_member(obj, k, kn, child)) {
				skip_binary(c, json_string_length(child));
				continue;
			}
		} else {
			if (f->idx >= json_array_size(f->node)) {
				c->nst--;
				continue;
			}
			child = json_array_get(f->node, f->idx);
			path_idx(pa, f->idx++);
			if (is_done(c, child))
				continue;
		}
		if (json_is_object(child) || json_is_array(child))
			push(c, child, pa->len);
		else
			scalar(c, child, pa, prompt);
	}
	c->nst = 0;
	path_cut(pa, base);
}

/* ---- valid JSON: the prompt fields of each API ------------------------- */

typedef void (*take_fn)(struct ctx *c, json_t *v, struct path *pa);

static json_t *get(json_t *o, const char *k)
{
	return json_is_object(o) ? json_object_get(o, k) : NULL;
}

static bool has_str(json_t *o, const char *k, const char *val)
{
	const char *s = json_string_value(get(o, k));

	return s && strcmp(s, val) == 0;
}

static void member(struct ctx *c, json_t *o, const char *k, struct path *pa, take_fn fn)
{
	json_t *v = get(o, k);
	size_t base = pa->len;

	if (!v)
		return;
	path_key(pa, k, strlen(k));
	fn(c, v, pa);
	path_cut(pa, base);
}

static void items(struct ctx *c, json_t *a, struct path *pa, take_fn fn)
{
	size_t base = pa->len;

	for (size_t i = 0; i < json_array_size(a); i++) {
		path_idx(pa, i);
		fn(c, json_array_get(a, i), pa);
		path_cut(pa, base);
	}
}

static void take_str(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_string(v)) {
		mark(c, v);
		scalar(c, v, pa, true);
	}
}

/* A whole subtree is prompt text (tool inputs, function call arguments and results). */
static void take_tree(struct ctx *c, json_t *v, struct path *pa)
{
	mark(c, v);
	walk(c, v, pa, true);
}

static void take_strs(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_str);
	else
		take_str(c, v, pa);
}

/* OpenAI content part: {"type": "text", "text": ...}, input_text/output_text, refusal. */
static void take_part(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "text", pa, take_str);
	member(c, v, "refusal", pa, take_str);
}

static void take_parts(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_part);
	else
		take_str(c, v, pa);
}

static void take_arguments(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "arguments", pa, take_str);
}

static void take_tool_call(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "function", pa, take_arguments);
}

static void take_tool_calls(struct ctx *c, json_t *v, struct path *pa)
{
	items(c, v, pa, take_tool_call);
}

static void take_chat_msg(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "content", pa, take_parts);
	member(c, v, "refusal", pa, take_str);
	member(c, v, "tool_calls", pa, take_tool_calls);
	member(c, v, "function_call", pa, take_arguments);
}

static void take_chat_msgs(struct ctx *c, json_t *v, struct path *pa)
{
	items(c, v, pa, take_chat_msg);
}

static void openai_chat(struct ctx *c, json_t *root, struct path *pa)
{
	member(c, root, "messages", pa, take_chat_msgs);
	member(c, root, "user", pa, take_str);
}

/* Responses input item: a message {role, content}, function_call {arguments},
 * function_call_output {output}, reasoning {summary: [{text}]}. */
static void take_resp_item(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "content", pa, take_parts);
	member(c, v, "arguments", pa, take_str);
	member(c, v, "output", pa, take_parts);
	member(c, v, "summary", pa, take_parts);
}

static void take_resp_input(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_resp_item);
	else
		take_str(c, v, pa);
}

static void openai_responses(struct ctx *c, json_t *root, struct path *pa)
{
	member(c, root, "instructions", pa, take_str);
	member(c, root, "input", pa, take_resp_input);
}

static void openai_completions(struct ctx *c, json_t *root, struct path *pa)
{
	member(c, root, "prompt", pa, take_strs);
	member(c, root, "input", pa, take_strs);
}

/* Anthropic document source: {"type": "text", "data": "..."} is plain text. */
static void take_doc_source(struct ctx *c, json_t *v, struct path *pa)
{
	if (has_str(v, "type", "text"))
		member(c, v, "data", pa, take_str);
}

/* A block inside a tool_result or a content document: text only, no further nesting (so the
 * prompt pass never recurses with the document's depth). */
static void take_inner_block(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "text", pa, take_str);
	member(c, v, "source", pa, take_doc_source);
}

static void take_inner_blocks(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_inner_block);
	else
		take_str(c, v, pa);
}

static void take_anth_source(struct ctx *c, json_t *v, struct path *pa)
{
	take_doc_source(c, v, pa);
	if (has_str(v, "type", "content"))
		member(c, v, "content", pa, take_inner_blocks);
}

static void take_block(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "text", pa, take_str);
	member(c, v, "thinking", pa, take_str);
	if (has_str(v, "type", "tool_use") || has_str(v, "type", "server_tool_use"))
		member(c, v, "input", pa, take_tree);
	if (has_str(v, "type", "tool_result"))
		member(c, v, "content", pa, take_inner_blocks);
	member(c, v, "source", pa, take_anth_source);
}

static void take_blocks(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_block);
	else
		take_str(c, v, pa);
}

static void take_anth_msg(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "content", pa, take_blocks);
}

static void take_anth_msgs(struct ctx *c, json_t *v, struct path *pa)
{
	items(c, v, pa, take_anth_msg);
}

static void anthropic_messages(struct ctx *c, json_t *root, struct path *pa)
{
	member(c, root, "system", pa, take_blocks);
	member(c, root, "messages", pa, take_anth_msgs);
}

static void take_args(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "args", pa, take_tree);
}

static void take_response(struct ctx *c, json_t *v, struct path *pa)
{
	member(c, v, "response", pa, take_tree);
}

/* Gemini part: text, functionCall.args, functionResponse.response (REST takes both the proto
 * JSON names and the snake_case ones). */
static void take_gem_part(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "text", pa, take_str);
	member(c, v, "functionCall", pa, take_args);
	member(c, v, "function_call", pa, take_args);
	member(c, v, "functionResponse", pa, take_response);
	member(c, v, "function_response", pa, take_response);
}

static void take_gem_parts(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_gem_part);
	else
		take_gem_part(c, v, pa);
}

static void take_gem_content(struct ctx *c, json_t *v, struct path *pa)
{
	take_str(c, v, pa);
	member(c, v, "parts", pa, take_gem_parts);
}

static void take_gem_contents(struct ctx *c, json_t *v, struct path *pa)
{
	if (json_is_array(v))
		items(c, v, pa, take_gem_content);
	else
		take_gem_content(c, v, pa);
}

static void gemini(struct ctx *c, json_t *root, struct path *pa)
{
	member(c, root, "systemInstruction", pa, take_gem_content);
	member(c, root, "system_instruction", pa, take_gem_content);
	member(c, root, "contents", pa, take_gem_contents);
}

/* ---- which API ----------------------------------------------------------- */

static bool ends_with(const char *s, size_t n, const char *suf)
{
	size_t k = strlen(suf);

	return n >= k && strncasecmp(s + n - k, suf, k) == 0;
}

/* From the request path (the query is never looked at). Gemini names the model in the path:
 * .../models/gemini-1.5-pro:generateContent. */
static enum lw_api api_from_path(const char *path, char *model, size_t msize)
{
	size_t n = strcspn(path, "?#");
	const char *last, *colon;

	while (n && path[n - 1] == '/')
		n--;
	last = path + n;
	while (last > path && last[-1] != '/')
		last--;
	colon = memchr(last, ':', (size_t)(path + n - last));
	if (colon) {
		size_t vn = (size_t)(path + n - colon - 1);

		if ((vn == 15 && !strncasecmp(colon + 1, "generateContent", 15)) ||
		    (vn == 21 && !strncasecmp(colon + 1, "streamGenerateContent", 21))) {
			size_t mn = (size_t)(colon - last);

			if (mn >= msize)
				mn = msize - 1;
			memcpy(model, last, mn);
			model[mn] = 0;
			return LW_API_GEMINI;
		}
		return LW_API_JSON;
	}
	if (ends_with(path, n, "/chat/completions"))
		return LW_API_OPENAI_CHAT;
	if (ends_with(path, n, "/responses"))
		return LW_API_OPENAI_RESPONSES;
	if (ends_with(path, n, "/completions") || ends_with(path, n, "/embeddings") ||
	    ends_with(path, n, "/complete"))
		return LW_API_OPENAI_COMPLETIONS;
	if (ends_with(path, n, "/messages") || ends_with(path, n, "/messages/count_tokens"))
		return LW_API_ANTHROPIC_MESSAGES;
	return LW_API_JSON;
}

static bool shape_fits(enum lw_api a, json_t *root)
{
	switch (a) {
	case LW_API_OPENAI_CHAT:
	case LW_API_ANTHROPIC_MESSAGES:
		return json_is_array(get(root, "messages"));
	case LW_API_OPENAI_RESPONSES:
		return get(root, "input") || get(root, "instructions");
	case LW_API_OPENAI_COMPLETIONS:
		return get(root, "prompt") || get(root, "input");
	case LW_API_GEMINI:
		return get(root, "contents") != NULL;
	default:
		return false;
	}
}

/* Without a telling path (a proxy, Bedrock's /model/X/invoke, scan of a file). */
static enum lw_api api_from_shape(json_t *root)
{
	if (!json_is_object(root))
		return LW_API_JSON;
	if (get(root, "contents"))
		return LW_API_GEMINI;
	if (json_is_array(get(root, "messages")))
		return get(root, "anthropic_version") || get(root, "system")
			       ? LW_API_ANTHROPIC_MESSAGES
			       : LW_API_OPENAI_CHAT;
	if (get(root, "instructions") || json_is_array(get(root, "input")))
		return LW_API_OPENAI_RESPONSES;
	if (get(root, "prompt") || get(root, "input"))
		return LW_API_OPENAI_COMPLETIONS;
	return LW_API_JSON;
}

static void extract_json(struct ctx *c, json_t *root, enum lw_api by_path, const char *path_model)
{
	struct lw_prompt *p = c->p;
	struct path pa = {{0}, 0};
	json_t *m = get(root, "model");

	p->api = by_path != LW_API_JSON && shape_fits(by_path, root) ? by_path
								     : api_from_shape(root);
	if (json_is_string(m))
		set_model(p, json_string_value(m), json_string_length(m));
	if (!p->model[0] && p->api == LW_API_GEMINI && path_model[0])
		set_model(p, path_model, strlen(path_model));
	c->known = p->api >= LW_API_OPENAI_CHAT;
	switch (p->api) {
	case LW_API_OPENAI_CHAT:
		openai_chat(c, root, &pa);
		break;
	case LW_API_OPENAI_RESPONSES:
		openai_responses(c, root, &pa);
		break;
	case LW_API_OPENAI_COMPLETIONS:
		openai_completions(c, root, &pa);
		break;
	case LW_API_ANTHROPIC_MESSAGES:
		anthropic_messages(c, root, &pa);
		break;
	case LW_API_GEMINI:
		gemini(c, root, &pa);
		break;
	default:
		break;
	}
	path_set(&pa, "$");
	walk(c, root, &pa, false);
}

/* ---- invalid JSON: the lenient pass ------------------------------------- */

static int hex4(const unsigned char *b, size_t n, size_t i)
{
	int v = 0;

	if (i + 4 > n)
		return -1;
	for (size_t k = i; k < i + 4; k++) {
		unsigned char ch = b[k];

		v <<= 4;
		if (is_digit(ch))
			v |= ch - '0';
		else if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
			v |= (ch | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

static void put_utf8(struct lw_buf *o, uint32_t cp)
{
	char b[4];
	size_t k;

	if (cp < 0x80) {
		b[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	lw_buf_put(o, b, k);
}

/* A string literal from just after its opening quote, unescaped into o; returns the index after
 * the closing quote (n when the body ends first). Lone surrogates become U+FFFD, unknown escapes
 * stay as written. */
static size_t lenient_string(const unsigned char *b, size_t n, size_t i, struct lw_buf *o)
{
	lw_buf_reset(o);
	while (i < n) {
		size_t j = i;
		int u, lo;

		while (j < n && b[j] != '"' && b[j] != '\\')
			j++;
		lw_buf_put(o, b + i, j - i);
		i = j;
		if (i == n)
			break;
		if (b[i] == '"')
			return i + 1;
		if (i + 1 == n) {
			lw_buf_putc(o, '\\');
			return n;
		}
		switch (b[i + 1]) {
		case '"':
		case '\\':
		case '/':
			lw_buf_putc(o, (char)b[i + 1]);
			i += 2;
			continue;
		case 'b':
			lw_buf_putc(o, '\b');
			i += 2;
			continue;
		case 'f':
			lw_buf_putc(o, '\f');
			i += 2;
			continue;
		case 'n':
			lw_buf_putc(o, '\n');
			i += 2;
			continue;
		case 'r':
			lw_buf_putc(o, '\r');
			i += 2;
			continue;
		case 't':
			lw_buf_putc(o, '\t');
			i += 2;
			continue;
		case 'u':
			break;
		default:
			lw_buf_put(o, b + i, 2);
			i += 2;
			continue;
		}
		u = hex4(b, n, i + 2);
		if (u < 0) {
			lw_buf_put(o, b + i, 2); /* the digits that follow are copied as they are */
			i += 2;
			continue;
		}
		i += 6;
		if (u >= 0xd800 && u <= 0xdbff && i + 1 < n && b[i] == '\\' && b[i + 1] == 'u' &&
		    (lo = hex4(b, n, i + 2)) >= 0xdc00 && lo <= 0xdfff) {
			put_utf8(o, 0x10000 + (((uint32_t)u - 0xd800) << 10) +
					    ((uint32_t)lo - 0xdc00));
			i += 6;
		} else if (u >= 0xd800 && u <= 0xdfff) {
			put_utf8(o, 0xfffd);
		} else {
			put_utf8(o, (uint32_t)u);
		}
	}
	return n;
}

static bool is_structural(unsigned char ch)
{
	return ch == '{' || ch == '}' || ch == '[' || ch == ']' || ch == ',' || ch == ':' ||
	       ch == '"';
}

/* 0: not a number, 1: integer, 2: real (JSON number grammar). */
static int number_kind(const char *s, size_t n)
{
	size_t i = 0;
	int kind = 1;

	if (i < n && s[i] == '-')
		i++;
	if (i == n || !is_digit((unsigned char)s[i]))
		return 0;
	while (i < n && is_digit((unsigned char)s[i]))
		i++;
	if (i < n && s[i] == '.') {
		kind = 2;
		if (++i == n || !is_digit((unsigned char)s[i]))
			return 0;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		kind = 2;
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i == n || !is_digit((unsigned char)s[i]))
			return 0;
		while (i < n && is_digit((unsigned char)s[i]))
			i++;
	}
	return i == n ? kind : 0;
}

struct lkey {
	char s[LW_PROMPT_FIELD_MAX]; /* cut: only compared with short key lists */
	size_t len;		     /* full length */
	bool set;
};

static void lkey_set(struct lkey *k, const char *s, size_t n)
{
	size_t m = n < sizeof(k->s) - 1 ? n : sizeof(k->s) - 1;

	memcpy(k->s, s, m);
	k->s[m] = 0;
	k->len = n;
	k->set = true;
}

static bool lkey_is(const struct lkey *k, const char *const *list)
{
	return k->set && k->len < sizeof(k->s) && key_in(k->s, k->len, list);
}

/* A value of the lenient pass, under key k (unset: none known). */
static void lenient_value(struct ctx *c, const struct lkey *k, const char *s, size_t n)
{
	struct lw_prompt *p = c->p;
	struct path pa = {{0}, 0};
	bool data_key = k->set && ((k->len == 4 && !strcmp(k->s, "data")) ||
				   (k->len == 9 && !strcmp(k->s, "file_data")));

	if (!n)
		return;
	if (!p->model[0] && k->set && k->len == 5 && !strcmp(k->s, "model"))
		set_model(p, s, n);
	if (c->known && lkey_is(k, enum_keys))
		return;
	if (is_data_url(s, n) || (data_key && n >= BINARY_MIN && is_b64(s, n))) {
		skip_binary(c, n);
		return;
	}
	path_set(&pa, "$");
	if (k->set) {
		path_cat(&pa, ".", 1);
		/* "$..email": somewhere under the document, the nearest key */
		path_key(&pa, k->s, k->len < sizeof(k->s) ? k->len : sizeof(k->s) - 1);
	}
	add_seg(c, pa.s, c->known && lkey_is(k, prompt_keys), s, n);
}

/* Pulls every string literal and bare token out of a body that does not parse, in document
 * order, tracking the nearest key for fields. Structure is guessed from the punctuation only,
 * so nothing the body holds can make it skip content: unterminated strings run to the end, and
 * anything that is not punctuation, true/false/null or a real is a segment. */
static void lenient(struct ctx *c, const unsigned char *b, size_t n)
{
	struct lkey stack[LENIENT_DEPTH]; /* key of each open container */
	bool arr[LENIENT_DEPTH];
	size_t depth = 0, i = 0;
	struct lkey cur = {{0}, 0, false}, none = {{0}, 0, false};

	while (i < n) {
		unsigned char ch = b[i];
		/* a value's key: the pending one, else the enclosing array's */
		const struct lkey *ak = depth && depth <= LENIENT_DEPTH && arr[depth - 1]
						? &stack[depth - 1]
						: &none;
		const struct lkey *vk = cur.set ? &cur : ak;

		if (is_ws(ch)) {
			i++;
			continue;
		}
		if (ch == '{' || ch == '[') {
			if (depth < LENIENT_DEPTH) {
				stack[depth] = *vk;
				arr[depth] = ch == '[';
			}
			depth++;
			cur.set = false;
			i++;
			continue;
		}
		if (ch == '}' || ch == ']' || ch == ',' || ch == ':') {
			if (ch != ':') {
				if (ch != ',' && depth)
					depth--;
				cur.set = false;
			}
			i++;
			continue;
		}
		if (ch == '"') {
			size_t j = lenient_string(b, n, i + 1, &c->tmp);
			size_t k = j;

			while (k < n && is_ws(b[k]))
				k++;
			if (k < n && b[k] == ':' && j <= n && b[j - 1] == '"') {
				if (!key_is_name(c->tmp.p ? c->tmp.p : "", c->tmp.len))
					add_seg(c, "$..*", false, c->tmp.p, c->tmp.len);
				lkey_set(&cur, c->tmp.p ? c->tmp.p : "", c->tmp.len);
				i = k + 1;
				continue;
			}
			lenient_value(c, vk, c->tmp.p ? c->tmp.p : "", c->tmp.len);
			cur.set = false;
			i = j;
			continue;
		}
		{
			size_t j = i, s = i, e;

			while (j < n && !is_structural(b[j]))
				j++;
			e = j;
			while (e > s && is_ws(b[e - 1]))
				e--;
			if (!((e - s == 4 && !memcmp(b + s, "true", 4)) ||
			      (e - s == 5 && !memcmp(b + s, "false", 5)) ||
			      (e - s == 4 && !memcmp(b + s, "null", 4)) ||
			      number_kind((const char *)b + s, e - s) == 2))
				lenient_value(c, vk, (const char *)b + s, e - s);
			cur.set = false;
			i = j;
		}
	}
}

/* ---- entry --------------------------------------------------------------- */

/* JSON values in a body, from its punctuation, counting stops past limit. jansson takes 40 to
 * 130 bytes per value, so a body of "[],[],..." would cost 40 times its size parsed. */
static size_t count_values(const unsigned char *b, size_t n, size_t limit)
{
	size_t v = 1;

	for (size_t i = 0; i < n && v <= limit; i++) {
		if (b[i] == '"') {
			for (i++; i < n && b[i] != '"'; i++)
				if (b[i] == '\\')
					i++;
		} else if (b[i] == ',' || b[i] == '[' || b[i] == '{') {
			v++;
		}
	}
	return v;
}

static bool type_is_json(const char *ct)
{
	for (const char *s = ct; *s; s++)
		if (strncasecmp(s, "json", 4) == 0)
			return true;
	return false;
}

void lw_prompt_extract(struct lw_prompt *p, const char *path, const char *content_type,
		       const void *body, size_t n, size_t max_text)
{
	const unsigned char *b = body ? body : (const unsigned char *)"";
	struct ctx c;
	char path_model[LW_PROMPT_MODEL_MAX] = "";
	enum lw_api by_path;
	size_t i = 0;
	unsigned char first;

	prompt_reset(p);
	if (!body)
		n = 0;
	memset(&c, 0, sizeof(c));
	c.p = p;
	c.max_text = max_text;
	by_path = api_from_path(path ? path : "", path_model, sizeof(path_model));

	if (n >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf)
		i = 3; /* a UTF-8 byte order mark, which jansson refuses */
	while (i < n && is_ws(b[i]))
		i++;
	first = i < n ? b[i] : 0;
	if (i == n)
		return; /* empty or blank: nothing to read (p->api stays text) */
	if (first == '{' || first == '[' || type_is_json(content_type ? content_type : "")) {
		json_error_t err;
		json_t *root = NULL;

		if (count_values(b + i, n - i, LW_PROMPT_MAX_VALUES) > LW_PROMPT_MAX_VALUES)
			p->values_limited = true;
		else
			root = json_loadb((const char *)b + i, n - i,
					  JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
					  &err);
		if (root) {
			extract_json(&c, root, by_path, path_model);
			json_decref(root);
			goto out;
		}
		p->json_error = !p->values_limited;
		if (first == '{' || first == '[' || first == '"') {
			p->api = by_path;
			if (p->api == LW_API_GEMINI && path_model[0])
				set_model(p, path_model, strlen(path_model));
			c.known = p->api >= LW_API_OPENAI_CHAT;
			lenient(&c, b + i, n - i);
			goto out;
		}
	}
	p->api = LW_API_TEXT;
	add_seg(&c, "body", false, (const char *)b, n);
out:
	lw_hmap_free(&c.done);
	free(c.st);
	lw_buf_free(&c.tmp);
}

const struct lw_prompt_seg *lw_prompt_seg_at(const struct lw_prompt *p, size_t off)
{
	size_t lo = 0, hi = p->nsegs;

	/* segments tile the text: the first one ending at or after off holds it */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->segs[mid].off + p->segs[mid].len < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < p->nsegs && p->segs[lo].off <= off)
		return &p->segs[lo];
	return NULL;
}
