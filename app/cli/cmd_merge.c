/*
 * cmd_merge.c - `clipdex merge --db OUT SHARD.db...`: joins the shard
 * databases written by `clipdex index --shard I/N` into one index (the
 * rows, vectors and video samples copied as they are; app/store/merge.c),
 * then brings OUT's vector matrix in step. Holds the same lock as `clipdex
 * index` on OUT, so a merge never races an index of the same database.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "store/merge.h"
#include "store/store.h"
#include "store/vecindex.h"

const char usage_merge[] =
    "Usage: clipdex merge [--db OUT] [-q] SHARD.db...\n"
    "\n"
    "Merges shard databases (`clipdex index --shard I/N`) into the index\n"
    "database OUT (created when missing). Files new to OUT or changed in a\n"
    "shard are copied with their vectors and video samples, byte for byte;\n"
    "merging the same shards again changes nothing. Every shard must come\n"
    "from the model OUT was made with. Files are never removed from OUT.\n"
    "\n"
    "Options:\n"
    "  --db FILE   the merged database (default: $CLIPDEX_DB, then ./clipdex.db)\n"
    "  -q, --quiet no summary\n"
    "  -h, --help  print this text\n";

/* The same file (a shard given as OUT would be merged into itself). */
static int same_file(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && strcmp(ra, rb) == 0;
    free(ra);
    free(rb);
    return same;
}

static int merge_run(const char *db, char **shards, size_t n, int quiet)
{
    for (size_t i = 0; i < n; i++)
        if (same_file(db, shards[i])) {
            cli_error("shard '%s' is the output database itself", shards[i]);
            return APP_USAGE;
        }
    store *s = NULL;
    int rc = store_open(db, 1, &s), lock_fd = -1;
    if (!rc) {
        lock_fd = open(db, O_RDONLY | O_CLOEXEC);
        if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
            cli_error("a `clipdex index` or `clipdex merge` is running on '%s'", db);
            rc = APP_FAIL;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t changed = 0;
        rc = store_merge(s, shards[i], &changed);
        total += changed;
    }
    store_model_id id;
    vec_index vi;
    if (!rc && !(rc = store_read_model(s, &id)) && !(rc = vecindex_open(s, id.dim, &vi))) {
        if (!quiet) printf("%zu shards merged into %s: %zu files added or updated, %zu vectors\n",
                           n, db, total, vi.n);
        vecindex_close(&vi);
        rc = cli_flush_stdout();
    }
    if (lock_fd >= 0) close(lock_fd);
    store_close(s);
    return rc;
}

int cmd_merge(int argc, char **argv)
{
    const char *db = NULL;
    char **shards = calloc((size_t)argc + 1, sizeof *shards);
    size_t n = 0;
    int r, rc = -1, quiet = 0;
    if (!shards) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (rc < 0 && cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_merge, stdout);
            rc = cli_flush_stdout();
        } else if (cli_args_positional(&a)) {
            shards[n++] = argv[a.i];
        } else if ((r = cli_args_value(&a, "--db", &db)) != 0) {
            if (r < 0) rc = APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--quiet")) != 0 || (r = cli_args_flag(&a, "-q")) != 0) {
            if (r < 0) rc = APP_USAGE;
            quiet = 1;
        } else {
            rc = cli_unknown_option(&a);
        }
    }
    if (rc < 0 && n == 0) rc = cli_usage_error(a.cmd, "nothing to merge: give one or more SHARD.db");
    if (rc < 0) rc = merge_run(store_db_path(db), shards, n, quiet);
    free(shards);
    return rc;
}
