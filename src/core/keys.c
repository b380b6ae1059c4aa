/* API keys: generation from libsodium's CSPRNG, strict shape checks on what a
 * client presents, BLAKE2b hashing for storage and the scope hierarchy. The
 * secret part carries 32 * 5 = 160 bits, so a fast unsalted hash is enough. */
#include "loyal/keys.h"

#include <sodium.h>
#include <string.h>

#include "loyal/error.h"

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char *const scopes[] = {"admin", "pos", "partner", "read"};

#define PREFIX     "lk_"
#define PREFIX_LEN 3
#define BODY_LEN   (LY_KEY_ID_LEN + LY_KEY_SECRET_LEN)

int ly_keys_init(void)
{
    return sodium_init() < 0 ? LY_EINTERNAL : 0;
}

static int scope_index(const char *scope, size_t len)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (strlen(scopes[i]) == len && memcmp(scopes[i], scope, len) == 0)
            return (int)i;
    return -1;
}

int ly_key_scope_valid(const char *scope)
{
    return scope && scope_index(scope, strlen(scope)) >= 0;
}

int ly_key_generate(const char *scope, char *key, char *id)
{
    if (!ly_key_scope_valid(scope))
        return LY_EINVAL;
    size_t slen = strlen(scope), n = PREFIX_LEN + slen + 1;
    memcpy(key, PREFIX, PREFIX_LEN);
    memcpy(key + PREFIX_LEN, scope, slen);
    key[n - 1] = '_';
    /* randombytes_uniform avoids modulo bias, though 32 divides 2^32 anyway. */
    for (size_t i = 0; i < BODY_LEN; i++)
        key[n + i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    key[n + BODY_LEN] = '\0';
    memcpy(id, key + n, LY_KEY_ID_LEN);
    id[LY_KEY_ID_LEN] = '\0';
    return 0;
}

int ly_key_parse(const char *key, char *scope, size_t scopelen, char *id)
{
    if (!key || strncmp(key, PREFIX, PREFIX_LEN) != 0)
        return LY_EAUTH;
    /* Bounded, so an attacker's megabyte header costs nothing to refuse. */
    size_t len = strnlen(key, LY_KEY_MAX);
    if (len >= LY_KEY_MAX)
        return LY_EAUTH;
    const char *s = key + PREFIX_LEN;
    const char *us = memchr(s, '_', len - PREFIX_LEN);
    if (!us || scope_index(s, (size_t)(us - s)) < 0)
        return LY_EAUTH;
    const char *body = us + 1;
    if (strlen(body) != BODY_LEN)
        return LY_EAUTH;
    for (size_t i = 0; i < BODY_LEN; i++)
        if (!memchr(alphabet, body[i], sizeof alphabet - 1))
            return LY_EAUTH;
    size_t slen = (size_t)(us - s);
    if (scope) {
        if (slen >= scopelen)
            return LY_EINVAL;
        memcpy(scope, s, slen);
        scope[slen] = '\0';
    }
    if (id) {
        memcpy(id, body, LY_KEY_ID_LEN);
        id[LY_KEY_ID_LEN] = '\0';
    }
    return 0;
}

void ly_key_hash(const char *key, unsigned char hash[LY_KEY_HASH_LEN])
{
    crypto_generichash(hash, LY_KEY_HASH_LEN, (const unsigned char *)key, strlen(key), NULL, 0);
}

int ly_key_hash_equal(const unsigned char a[LY_KEY_HASH_LEN],
                      const unsigned char b[LY_KEY_HASH_LEN])
{
    return sodium_memcmp(a, b, LY_KEY_HASH_LEN) == 0;
}

int ly_key_scope_allows(const char *have, const char *need)
{
    if (!ly_key_scope_valid(have) || !ly_key_scope_valid(need))
        return 0;
    if (strcmp(have, "admin") == 0 || strcmp(need, "read") == 0)
        return 1;
    /* pos and partner are siblings: neither may act as the other. */
    return strcmp(have, need) == 0;
}
