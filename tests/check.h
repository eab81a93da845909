/*
 * check.h - the tiny test harness every tests/test_*.c uses. CHECK records a
 * pass or a failure (with file:line and a message); check_done() prints
 * "<name>: N passed, N failed[, N skipped]" and returns the exit status.
 * Tests that need ../shared call check_shared() and skip when it is absent.
 */
#ifndef CHECK_H
#define CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int check_passed, check_failed, check_skipped;

/* GCC 12 for aarch64 stops with an internal compiler error ("in
 * vect_transform_reduction") when it vectorizes some reductions of the tests
 * (test_kernels.c quant_formats, test_qgemm.c check_act_row and
 * test_accuracy); those
 * functions opt out of the loop vectorizer there. Test code only: the
 * library never needs it. */
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#define CHECK_NO_VECTORIZE __attribute__((optimize("no-tree-vectorize")))
#else
#define CHECK_NO_VECTORIZE
#endif

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)

#define SKIP(...)                                                            \
    do {                                                                     \
        check_skipped++;                                                     \
        fprintf(stderr, "SKIP %s:%d: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
    } while (0)

/* The shared data directory: $CLIPDEX_SHARED or ../shared; NULL if absent. */
static inline const char *check_shared(void)
{
    const char *s = getenv("CLIPDEX_SHARED");
    if (!s || !*s) s = "../shared";
    struct stat st;
    return stat(s, &st) == 0 && S_ISDIR(st.st_mode) ? s : NULL;
}

/* The build directory ($BUILD or build). */
static inline const char *check_build(void)
{
    const char *s = getenv("BUILD");
    return s && *s ? s : "build";
}

static inline int check_done(const char *name)
{
    printf("%s: %d passed, %d failed, %d skipped\n", name, check_passed, check_failed,
           check_skipped);
    return check_failed ? 1 : 0;
}

#endif
