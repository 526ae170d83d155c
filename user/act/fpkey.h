/*
 * The per-host fingerprint key: findings carry HMAC-SHA256(key, normalised
 * value), so the same leaked value can be correlated across alerts, hosts'
 * stores and reviews without ever being stored. The key is 32 random bytes
 * in a file of the agent's state directory, readable by root only: whoever
 * holds it could test guesses against fingerprints.
 */
#ifndef LW_ACT_FPKEY_H
#define LW_ACT_FPKEY_H

#include <stddef.h>
#include <stdint.h>

#define LW_FPKEY_LEN 32
#define LW_FPKEY_FILE "fingerprint.key"
#define LW_STATE_DIR_DEFAULT "/var/lib/leakwatch"

/* Reads DIR/fingerprint.key, creating DIR (0700) and the key (0600, from
 * getrandom) when missing. Refuses a key file that is not a regular file
 * owned by us, has the wrong size, or can be read by group or others.
 * 0, or -1 with a reason in err. */
int lw_fpkey_load(const char *dir, uint8_t key[LW_FPKEY_LEN], char *err, size_t errlen);

#endif
