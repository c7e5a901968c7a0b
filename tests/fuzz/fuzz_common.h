/*
 * fuzz_common.h — what the libFuzzer targets in tests/fuzz share: a loud failure for a broken
 * invariant (the fuzzer only notices crashes, so a wrong result must become one) and a CRC
 * fix-up. The binary state formats end in a CRC32 that random bytes almost never match; without
 * the fix-up the fuzzer would only ever exercise the "CRC mismatch" branch, never the fields
 * behind it. The CRC is zlib's crc32 (the same polynomial, init and final xor as the library's).
 */
#ifndef MTGRAD_FUZZ_COMMON_H
#define MTGRAD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FUZZ_ASSERT(cond)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static inline uint32_t fuzz_crc32(const unsigned char *p, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

/* Writes the CRC of p[0, n - slot) into the last `slot` bytes (little-endian, zero-padded). */
static inline void fuzz_fix_crc(unsigned char *p, size_t n, size_t slot)
{
    if (n < slot) return;
    uint32_t c = fuzz_crc32(p, n - slot);
    for (size_t i = 0; i < slot; i++) p[n - slot + i] = i < 4 ? (unsigned char)(c >> (8 * i)) : 0;
}

/* A NUL-terminated copy of the input (text parsers take C strings). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return NULL;
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
