/* API keys: "lk_<scope>_<id><secret>", where id is 12 and secret 32
 * characters of a lower-case base32 alphabet from libsodium's generator. The
 * store keeps the id and a BLAKE2b-256 hash of the whole key, never the key.
 * Thread-safe once ly_keys_init succeeded. */
#ifndef LOYAL_KEYS_H
#define LOYAL_KEYS_H

#include <stddef.h>

#define LY_KEY_ID_LEN     12
#define LY_KEY_SECRET_LEN 32
#define LY_KEY_MAX        64 /* buffer size enough for any key and its NUL */
#define LY_KEY_HASH_LEN   32

/* Initialises libsodium; 0 or LY_EINTERNAL. */
int ly_keys_init(void);
/* Is scope one of "admin", "pos", "partner", "read"? */
int ly_key_scope_valid(const char *scope);
/* Writes a new key for scope to key (LY_KEY_MAX bytes) and its id to id
 * (LY_KEY_ID_LEN + 1 bytes). 0 or LY_EINVAL for an unknown scope. */
int ly_key_generate(const char *scope, char *key, char *id);
/* Splits a presented key. 0, or LY_EAUTH when it is not shaped like a key;
 * LY_EINVAL when scope (scopelen bytes; 8 always suffice) cannot hold the
 * scope. scope and id may be NULL when not wanted. */
int ly_key_parse(const char *key, char *scope, size_t scopelen, char *id);
void ly_key_hash(const char *key, unsigned char hash[LY_KEY_HASH_LEN]);
/* Constant-time comparison; 1 when equal. */
int ly_key_hash_equal(const unsigned char a[LY_KEY_HASH_LEN],
                      const unsigned char b[LY_KEY_HASH_LEN]);
/* May a key of scope `have` call a route that needs `need`? admin may do
 * everything; read may do only what needs read; pos and partner what needs
 * themselves or read. */
int ly_key_scope_allows(const char *have, const char *need);

#endif
