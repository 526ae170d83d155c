/*
 * The text a model will read, from a request body: the prompt fields of the
 * AI API the request is for (recognised from its path and the body's shape),
 * then every other string of the document, laid out as one text the
 * classifier scans, with a map from text offsets back to JSON fields.
 *
 * JSON is parsed with jansson; a body that looks like JSON but does not parse
 * (truncated capture, lone surrogates, duplicate keys, too deep, integers past
 * int64, trailing data) is read by a lenient pass that still pulls out every
 * string literal and bare token, unescaped: making the JSON invalid must not
 * hide content.
 */
#ifndef LW_PROMPT_H
#define LW_PROMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define LW_PROMPT_FIELD_MAX 64
#define LW_PROMPT_MODEL_MAX 128
/* A JSON body with more values than this is not parsed (jansson's memory is 40-130 bytes a
 * value) but read by the lenient pass: values_limited. */
#define LW_PROMPT_MAX_VALUES (1u << 18)
/* Segments past this are merged into the last one (field "(merged)"), counted in merged_segs. */
#define LW_PROMPT_MAX_SEGS 65536

enum lw_api {
	LW_API_TEXT = 0,	   /* not JSON: the body as text */
	LW_API_JSON,		   /* JSON of no known API: every string value */
	LW_API_OPENAI_CHAT,	   /* POST /v1/chat/completions */
	LW_API_OPENAI_RESPONSES,   /* POST /v1/responses */
	LW_API_OPENAI_COMPLETIONS, /* legacy /v1/completions, /v1/embeddings (prompt / input) */
	LW_API_ANTHROPIC_MESSAGES, /* POST /v1/messages */
	LW_API_GEMINI,		   /* .../models/X:generateContent, :streamGenerateContent */
};
/* "text", "json", "openai.chat", "openai.responses", "openai.completions", "anthropic.messages",
 * "gemini.generate" */
const char *lw_api_name(enum lw_api a);

struct lw_prompt_seg {
	size_t off, len; /* in text; the '\n' after each segment is not counted */
	/* Where it came from: "messages[2].content", "system", "contents[0].parts[1].text", "input"
	 * for prompt fields; "$.user.email" for other values; "$..email" from the lenient pass (the
	 * nearest key); "body" for raw text. Object keys that look like data rather than names
	 * (emails, numbers, long tokens) are segments of their own and read "*" in paths, so a
	 * field never carries content. Cut at 63 bytes. */
	char field[LW_PROMPT_FIELD_MAX];
	bool prompt; /* a prompt field of the recognised API (false: other string value) */
};

struct lw_prompt {
	enum lw_api api;
	/* the request's model ("" when absent); Gemini: from the path */
	char model[LW_PROMPT_MODEL_MAX];
	/* every segment's text, each followed by '\n': what the classifier scans */
	struct lw_buf text;
	struct lw_prompt_seg *segs;
	size_t nsegs, cap;
	/* not valid JSON although it looked like JSON: scanned leniently */
	bool json_error;
	/* over LW_PROMPT_MAX_VALUES values: not parsed, scanned leniently (json_error false) */
	bool values_limited;
	/* text cut at max_text; text_dropped: bytes of content left out */
	bool limited;
	size_t text_dropped;
	/* segments merged into the last past LW_PROMPT_MAX_SEGS */
	size_t merged_segs;
	/* inline binary payloads skipped (base64 images, audio, files), and their size as sent */
	size_t skipped_binary;
	size_t skipped_binary_bytes;
};

void lw_prompt_init(struct lw_prompt *p);
void lw_prompt_free(struct lw_prompt *p);

/* Resets p, then fills it. path: the request path (with query; may be "" or NULL) to recognise
 * the API, together with the body's shape; only the part before '?' is looked at, and it is never
 * scanned (Gemini puts the API key in the query). content_type may be "" or NULL. Text bounded by
 * max_text bytes, newlines included (0: nothing fits); prompt fields come first so a cut keeps
 * them. JSON integers are segments too (their decimal text); reals, true, false and null are not.
 * Segments are never empty. */
void lw_prompt_extract(struct lw_prompt *p, const char *path, const char *content_type,
		       const void *body, size_t n, size_t max_text);

/* The segment holding text offset off (its trailing '\n' included), or NULL. */
const struct lw_prompt_seg *lw_prompt_seg_at(const struct lw_prompt *p, size_t off);

#endif
