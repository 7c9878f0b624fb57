/*
 * fuzz_harness.h — what every libFuzzer target shares: REQUIRE (a property
 * that must hold traps, so the fuzzer records the input) and fuzz_write_file
 * (put the fuzz bytes into a file, optionally gzipped with a valid
 * stream, for readers that take paths).
 */
#ifndef IB_FUZZ_HARNESS_H
#define IB_FUZZ_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#define REQUIRE(c)                                                                                                     \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "property failed: %s (line %d)\n", #c, __LINE__);                                         \
            __builtin_trap();                                                                                          \
        }                                                                                                              \
    } while (0)

static inline void fuzz_write_file(const char *path, const uint8_t *d, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb1");
        REQUIRE(f);
        if (n)
            gzwrite(f, d, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        REQUIRE(f);
        if (n)
            fwrite(d, 1, n, f);
        fclose(f);
    }
}

#endif
