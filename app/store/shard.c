/*
 * shard.c - shard selection for `clipdex index --shard`: parses I/N or the
 * scheduler's environment (Slurm job arrays, Kubernetes indexed jobs) and
 * keeps the walked files whose stable hash falls in this shard. Invariant:
 * for a fixed N every file lies in exactly one shard, whatever machine or
 * mount point walks it, and the choice never depends on the database.
 */
#include "store/shard.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
    char *end = NULL;
    if (!s || s[0] < '0' || s[0] > '9') return -1;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return errno || *end || *v > max ? -1 : 0;
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* The index and count from the environment; 0 or -1 (reported). */
static int shard_from_env(unsigned count_hint, unsigned long *idx, unsigned long *cnt)
{
    const char *id = env_or_null("SLURM_ARRAY_TASK_ID");
    if (id) {
        unsigned long lo = 0, hi = 0;
        const char *c = env_or_null("SLURM_ARRAY_TASK_COUNT");
        if (parse_uint(id, SHARD_MAX, idx)) goto bad;
        if (c) return parse_uint(c, SHARD_MAX, cnt) ? (report_error("invalid "
                       "SLURM_ARRAY_TASK_COUNT '%s'", c), -1) : 0;
        if (parse_uint(env_or_null("SLURM_ARRAY_TASK_MIN"), SHARD_MAX, &lo) ||
            parse_uint(env_or_null("SLURM_ARRAY_TASK_MAX"), SHARD_MAX, &hi) || hi < lo || *idx < lo) {
            report_error("--shard auto: SLURM_ARRAY_TASK_ID is set but neither "
                         "SLURM_ARRAY_TASK_COUNT nor a valid SLURM_ARRAY_TASK_MIN/MAX");
            return -1;
        }
        *idx -= lo;
        *cnt = hi - lo + 1;
        return 0;
    }
    id = env_or_null("JOB_COMPLETION_INDEX");
    if (!id) {
        report_error("--shard auto: neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set");
        return -1;
    }
    if (parse_uint(id, SHARD_MAX, idx)) goto bad;
    const char *c = env_or_null("CLIPDEX_SHARD_COUNT");
    *cnt = count_hint;
    if (!count_hint && (!c || parse_uint(c, SHARD_MAX, cnt))) {
        report_error("--shard auto with JOB_COMPLETION_INDEX needs the count: --shard-count N "
                     "or $CLIPDEX_SHARD_COUNT");
        return -1;
    }
    return 0;
bad:
    report_error("--shard auto: invalid task index '%s'", id);
    return -1;
}

int shard_parse(const char *spec, unsigned count_hint, shard_spec *out)
{
    unsigned long idx = 0, cnt = 0;
    if (strcmp(spec, "auto") == 0) {
        if (shard_from_env(count_hint, &idx, &cnt)) return APP_USAGE;
    } else {
        const char *slash = strchr(spec, '/');
        char head[32];
        size_t hl = slash ? (size_t)(slash - spec) : 0;
        if (!slash || hl == 0 || hl >= sizeof head) goto bad;
        memcpy(head, spec, hl);
        head[hl] = '\0';
        if (parse_uint(head, SHARD_MAX, &idx) || parse_uint(slash + 1, SHARD_MAX, &cnt)) goto bad;
    }
    if (cnt < 1 || idx >= cnt) {
        report_error("shard %lu of %lu: the index must be below the count (0 <= I < N)", idx, cnt);
        return APP_USAGE;
    }
    out->index = (unsigned)idx;
    out->count = (unsigned)cnt;
    return 0;
bad:
    report_error("invalid --shard '%s': give I/N (0 <= I < N <= %d) or auto", spec, SHARD_MAX);
    return APP_USAGE;
}

uint64_t shard_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Length of the part of path that is root `r` plus its '/', or 0. */
static size_t root_prefix(const char *root, const char *path, size_t len)
{
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/') rl--;
    if (rl > len || memcmp(root, path, rl) != 0) return 0;
    if (rl == len) return 0; /* the root itself (a file root) */
    if (rl == 1 && root[0] == '/') return 1;
    return path[rl] == '/' ? rl + 1 : 0;
}

unsigned shard_of(const walk_result *r, const char *path, size_t len, unsigned count)
{
    size_t best = 0;
    for (size_t i = 0; i < r->n_roots; i++) {
        size_t p = root_prefix(r->roots[i], path, len);
        if (p > best) best = p;
    }
    if (best == 0) { /* a file root or a path outside the roots: its base name */
        const char *b = memrchr(path, '/', len);
        best = b ? (size_t)(b - path) + 1 : 0;
    }
    return (unsigned)(shard_hash(path + best, len - best) % count);
}

int shard_mine(const shard_spec *s, const walk_result *r, const char *path, size_t len)
{
    return s->count == 0 || shard_of(r, path, len, s->count) == s->index;
}

void shard_filter(const shard_spec *s, walk_result *r)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->n; i++) {
        if (shard_mine(s, r, r->v[i].path, r->v[i].len)) r->v[kept++] = r->v[i];
        else free(r->v[i].path);
    }
    r->n = kept;
}
