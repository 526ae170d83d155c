/*
 * Validators: the checks that turn a pattern hit into a finding. Each one is
 * a pure function of the bytes, so tests can table them; lw_validate runs the
 * one a rule names, with the whole text at hand for those that look around
 * the value (a private key's body after its BEGIN line).
 */
#ifndef LW_CLASSIFY_VALIDATE_H
#define LW_CLASSIFY_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "classify/rules.h"

/* Runs validator v on text[s..*e). A validator may move *e: the phone check
 * drops trailing digit groups that make the number too long, the private key
 * check extends the value to its END line. */
bool lw_validate(enum lw_validator v, const char *text, size_t n, size_t s, size_t *e);

bool lw_val_luhn(const char *v, size_t n); /* digits; other bytes are skipped */
/* 12-19 digits with consistent separators, a known issuer prefix for its
 * length, and a valid Luhn check digit. */
bool lw_val_credit_card(const char *v, size_t n);
const char *lw_val_card_brand(const char *v, size_t n); /* NULL when unknown */
bool lw_val_iban(const char *v, size_t n);
bool lw_val_us_ssn(const char *v, size_t n);
bool lw_val_jwt(const char *v, size_t n);
/* *n may shrink (trailing groups that made it too long). */
bool lw_val_phone(const char *v, size_t *n);
bool lw_val_email(const char *v, size_t n);
bool lw_val_url_password(const char *v, size_t n);
bool lw_val_mixed_chars(const char *v, size_t n);
/* *e may grow to the end of the END line. */
bool lw_val_private_key(const char *text, size_t n, size_t s, size_t *e);

/* Shannon entropy in bits per byte (0 for an empty string). */
double lw_val_entropy(const char *v, size_t n);
/* Documentation values and placeholders: "EXAMPLE", "your-api-key", "xxxx",
 * "<token>", "${VAR}", long runs of one character, 1234567890 / abcdef... */
bool lw_val_placeholder(const char *v, size_t n);
/* Reserved documentation domains (RFC 2606/6761): example.com/.net/.org and
 * their subdomains, *.example, *.test, *.invalid, *.localhost. */
bool lw_val_doc_domain(const char *d, size_t n);

#endif
