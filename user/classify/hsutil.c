#include "hsutil.h"

#include <hs.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>

bool lw_hs_info(const char *pattern, unsigned flags, struct lw_hs_info *info, char *err,
		size_t errlen)
{
	hs_expr_info_t *xi = NULL;
	hs_compile_error_t *ce = NULL;

	if (hs_expression_info(pattern, flags, &xi, &ce) != HS_SUCCESS) {
		snprintf(err, errlen, "%s", ce ? ce->message : "invalid pattern");
		hs_free_compile_error(ce);
		return false;
	}
	if (xi->min_width == 0) {
		snprintf(err, errlen, "can match the empty string");
		free(xi);
		return false;
	}
	info->min_width = xi->min_width;
	info->max_width = xi->max_width == UINT_MAX ? LW_HS_UNBOUNDED : xi->max_width;
	free(xi);
	return true;
}

bool lw_hs_check(const char *pattern, unsigned flags, bool som, struct lw_hs_info *info, char *err,
		 size_t errlen)
{
	hs_compile_error_t *ce = NULL;
	hs_database_t *db = NULL;
	unsigned f = flags | (som ? HS_FLAG_SOM_LEFTMOST : 0);

	if (!lw_hs_info(pattern, f, info, err, errlen))
		return false;
	if (hs_compile(pattern, f, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
		if (som)
			snprintf(err, errlen,
				 "%s (when tracking where matches start; bounded repeats like "
				 "{20,300} are the usual cause: write {20,} and set max_length)",
				 ce ? ce->message : "cannot compile");
		else
			snprintf(err, errlen, "%s", ce ? ce->message : "cannot compile");
		hs_free_compile_error(ce);
		return false;
	}
	hs_free_database(db);
	return true;
}

void lw_hs_escape(struct lw_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '_')
			lw_buf_putc(b, (char)c);
		else
			lw_buf_printf(b, "\\x%02x", c);
	}
}
