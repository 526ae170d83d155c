/*
 * Classification rules and exact-value lists: what the classifier looks for.
 *
 * The built-in pack (policies/rules/builtin.yaml, embedded in the binary) is
 * loaded first; a policy directory may then add rules (DIR/rules/NAME.yaml),
 * override built-in rules by id (only the keys it gives) and add exact-value
 * lists (DIR/lists/NAME.yaml). docs/rules.md is the user documentation of the
 * format; this header is the in-memory form.
 */
#ifndef LW_CLASSIFY_RULES_H
#define LW_CLASSIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/diag.h"

enum lw_severity { LW_SEV_LOW = 0, LW_SEV_MEDIUM, LW_SEV_HIGH, LW_SEV_CRITICAL };
enum lw_action { LW_ACT_ALERT = 0, LW_ACT_BLOCK, LW_ACT_OFF /* disabled */ };

const char *lw_severity_str(enum lw_severity s);
const char *lw_action_str(enum lw_action a);

/* How a value is shown in a finding's sample (user/classify/mask.h). */
enum lw_mask_kind {
	LW_MASK_SECRET = 0, /* known public prefix + last chars (<= 25% of the rest) */
	LW_MASK_CARD,	    /* last 4 digits */
	LW_MASK_EMAIL,	    /* j***@e***.com */
	LW_MASK_PHONE,	    /* last 2 digits */
	LW_MASK_IBAN,	    /* country code + last 4 */
	LW_MASK_SSN,	    /* ***-**-**89 */
	LW_MASK_PEM,	    /* the BEGIN line only */
	LW_MASK_URI,	    /* the scheme only, user and password hidden */
	LW_MASK_WORD,	    /* first character */
	LW_MASK_FULL,	    /* nothing but the length */
	LW_MASK__N
};

/* Normalisation before fingerprinting (and for list matching). */
enum lw_norm {
	LW_NORM_NONE = 0, /* the bytes as found */
	LW_NORM_LOWER,	  /* ASCII lower case */
	LW_NORM_DIGITS,	  /* digits only */
	LW_NORM_EMAIL,	  /* trimmed, ASCII lower case */
	LW_NORM_COMPACT,  /* spaces and '-' removed, ASCII upper case (IBAN) */
	LW_NORM__N
};

/* Which neighbours of a value end it (checked on each side whose edge byte
 * is itself in the set): a value must not be part of a longer token. */
enum lw_boundary {
	LW_BOUND_TOKEN = 0, /* [A-Za-z0-9_-] */
	LW_BOUND_WORD,	    /* [A-Za-z0-9_] */
	LW_BOUND_BASE64,    /* [A-Za-z0-9+/], and '=' after the value */
	LW_BOUND_NONE,
	LW_BOUND__N
};

/* Validators, applied in this order; a rule names any subset. */
enum lw_validator {
	LW_VAL_LUHN = 0,
	LW_VAL_CREDIT_CARD,  /* issuer prefix and length, separators, Luhn */
	LW_VAL_IBAN,	     /* country length, mod-97 */
	LW_VAL_US_SSN,	     /* area/group/serial, known fake numbers */
	LW_VAL_JWT,	     /* three base64url parts, header JSON with "alg" */
	LW_VAL_PHONE,	     /* plausible length, not a date/time/version/address */
	LW_VAL_EMAIL,	     /* syntax, real-looking TLD, not a documentation domain */
	LW_VAL_PRIVATE_KEY,  /* a key body follows the BEGIN line */
	LW_VAL_URL_PASSWORD, /* the URL's password is not a placeholder */
	LW_VAL_MIXED_CHARS,  /* at least two of lower case, upper case, digits */
	LW_VAL__N
};

const char *lw_validator_name(enum lw_validator v);

enum lw_token_kind {
	LW_TOKEN_NONE = 0,
	LW_TOKEN_EMAIL,
	LW_TOKEN_WORD,
	LW_TOKEN_DIGITS,
	LW_TOKEN__N
};

const char *lw_token_kind_name(enum lw_token_kind k);
const char *lw_norm_name(enum lw_norm n);

struct lw_strv {
	char **v;
	size_t n;
};

struct lw_rule {
	char *id;	     /* unique; [a-z0-9_.-] */
	char *type;	     /* canonical finding type */
	char *description;   /* may be NULL */
	char *pattern;	     /* the value, Vectorscan syntax */
	char *trigger;	     /* NULL, or a cheaper regex every value contains or
			      * ends next to: rules with the same trigger share
			      * one expression of the database. "@digits": the
			      * built-in digit-run trigger */
	uint32_t min_digits; /* @digits: digits a run needs (default 7) */
	uint32_t margin;     /* @digits: bytes around a run the value may reach (default 4) */
	bool caseless;
	/* Context words (ASCII, matched case-insensitively). required: the
	 * value must start within window bytes after the end of a word (the
	 * words, not the pattern, go into the database). Not required: a word
	 * within window bytes before the value raises the severity one step.
	 * assign: the value must directly follow WORD[name tail] ["'] (= | : |
	 * => | :=) ["'], as in `password = "..."` or `"apiKey": "..."`. */
	struct lw_strv context;
	uint32_t context_window;
	bool context_required;
	bool context_assign;
	uint32_t validators;		 /* bit i: enum lw_validator i */
	double min_entropy;		 /* bits per byte of the part after the prefix; 0: off */
	uint32_t min_length, max_length; /* 0: from the pattern */
	enum lw_boundary boundary;
	/* Allowlists: a value equal to an `allow` entry (ASCII case-insensitive),
	 * containing an `allow_contains` entry (case-insensitive), or matched
	 * by an `allow_regex` entry is not a finding. */
	struct lw_strv allow, allow_contains, allow_regex;
	bool placeholders;	 /* reject documentation/placeholder values */
	struct lw_strv prefixes; /* public prefixes, kept by the secret mask */
	enum lw_mask_kind mask;
	enum lw_norm normalize; /* for fingerprints */
	int priority;		/* overlapping findings: the higher wins */
	uint32_t min_count;
	enum lw_severity severity;
	enum lw_action action; /* LW_ACT_OFF when disabled (`enabled: false`) */
	/* `mode: monitor`: a block rule being rolled out. Its findings are only
	 * reported as would_block, even under an enforcing policy, until the
	 * operator has seen what it would have stopped. */
	bool monitor;
	/* `kernel: false`: never part of the in-kernel matcher (kmatch.h), so
	 * a block is only ever decided by this classifier, after the write.
	 * For rules whose kernel form would be too loose for someone's traffic. */
	bool no_kernel;
	bool builtin;
	char *file; /* where it was defined, then last overridden */
	int line;
	char *pfile; /* where its pattern was set */
	int pline;
};

struct lw_list {
	char *id, *type, *description;
	enum lw_severity severity;
	enum lw_action action;
	bool monitor;	/* `mode: monitor`, as for rules */
	bool no_kernel; /* `kernel: false`, as for rules */
	enum lw_norm normalize;
	/* LW_TOKEN_NONE: values are literals in the database. Otherwise values
	 * (normalised) and digests are looked up for every token of this kind. */
	enum lw_token_kind token;
	char **values; /* normalised; literal lists only */
	size_t nvalues;
	uint8_t (*digests)[32]; /* sorted, unique; token lists */
	size_t ndigests;
	uint32_t min_count;
	char *file;
	int line;
};

struct lw_ruleset {
	struct lw_rule *rules;
	size_t n;
	struct lw_list *lists;
	size_t nlists;
};

/* Built-in pack, then DIR/rules/NAME.yaml, then DIR/lists/NAME.yaml (files in byte
 * order of names; a missing rules/ or lists/ dir is fine). dir NULL: built-in
 * only. Every problem -> d as FILE:LINE: reason (unknown keys, bad regex,
 * unknown validator, duplicate ids within the user files, bad digests...).
 * Returns the number of errors added. rs must be zeroed; a set with errors
 * must only be freed. */
int lw_rules_load(struct lw_ruleset *rs, const char *dir, struct lw_diag *d);
void lw_rules_free(struct lw_ruleset *rs);

/* The embedded policies/rules/builtin.yaml (NUL-terminated). */
extern const char lw_rules_builtin_yaml[];
size_t lw_rules_builtin_size(void);
#define LW_RULES_BUILTIN_NAME "policies/rules/builtin.yaml (built in)"

/* Exact-value list helpers, shared with the lead's `leakwatch` digest helper:
 * normalise value[0..n) as list normalisation `norm` into out (reset first).
 * Returns false when nothing is left (e.g. no digit for LW_NORM_DIGITS). */
struct lw_buf;
bool lw_list_normalize(enum lw_norm norm, const char *value, size_t n, struct lw_buf *out);
/* SHA-256 of the normalised value, as a list's `sha256:` entry holds it. */
bool lw_list_digest(enum lw_norm norm, const char *value, size_t n, uint8_t out[32]);

#endif
