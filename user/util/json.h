/* Writing JSON lines. Output only: parsing uses a library (later stages). */
#ifndef LW_JSON_H
#define LW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Writes "key": with a leading comma unless it is the object's first key. */
struct lw_json {
	struct lw_buf *b;
	bool first;
};

void lw_json_begin(struct lw_json *j, struct lw_buf *b);
void lw_json_end(struct lw_json *j);
void lw_json_str(struct lw_json *j, const char *key, const char *val);
void lw_json_strn(struct lw_json *j, const char *key, const void *val, size_t n);
void lw_json_u64(struct lw_json *j, const char *key, uint64_t val);
void lw_json_i64(struct lw_json *j, const char *key, int64_t val);
void lw_json_bool(struct lw_json *j, const char *key, bool val);
void lw_json_raw(struct lw_json *j, const char *key, const char *raw);
/* Just the key (and its comma): the caller writes the value, e.g. an array. */
void lw_json_key(struct lw_json *j, const char *key);

/* Append s[0..n) as a quoted JSON string. Bytes must be valid UTF-8 (see
 * lw_utf8_valid); any invalid byte is written as U+FFFD. */
void lw_json_quote(struct lw_buf *b, const void *s, size_t n);
bool lw_utf8_valid(const void *s, size_t n);
void lw_base64(struct lw_buf *b, const void *s, size_t n);

#endif
