/*
 * cmd_ann.c - `clipdex ann build --db FILE [--factory STRING]`: builds (or
 * brings up to date) the FAISS index beside the database that `clipdex
 * search` and `clipdex serve` use for approximate candidates (app/ann/,
 * docs/ann.md). Needs no model: the database records its dimension.
 */
#include <stdio.h>
#include <string.h>

#include "ann/ann.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "store/store.h"
#include "store/vecindex.h"

const char usage_ann[] =
    "Usage: clipdex ann build [--db FILE] [--factory STRING]\n"
    "\n"
    "Builds the approximate (FAISS) index of the database's vectors beside it\n"
    "(FILE-ann and FILE-ann.ids), inner product on the normalised vectors.\n"
    "`clipdex search` and `clipdex serve` then take 10 x k approximate\n"
    "candidates from it and re-rank them exactly; vectors indexed after the\n"
    "build are scanned exactly until the next build. Run again after indexing:\n"
    "the new vectors are added to the trained index when the factory allows it\n"
    "(same factory, the rule still picks it, under 25% of its vectors removed\n"
    "or changed), else the index is built anew.\n"
    "\n"
    "Options:\n"
    "  --db FILE          index database (default: $CLIPDEX_DB, then ./clipdex.db)\n"
    "  --factory STRING   a FAISS index_factory string (\"IVF1024,Flat\",\n"
    "                     \"HNSW32,Flat\", ...); default by vector count n:\n"
    "                     n < 10k Flat; < 1M IVF{L},Flat; < 10M IVF{L}_HNSW32,Flat;\n"
    "                     else OPQ64_256,IVF{L}_HNSW32,PQ64, with L the largest\n"
    "                     power of two <= 4 sqrt(n)\n"
    "  -h, --help         print this text\n";

static int ann_build_run(const char *db, const char *factory)
{
    store *s = NULL;
    store_model_id id;
    vec_index vi;
    memset(&vi, 0, sizeof vi);
    ann_build_info info;
    int rc = store_open(db, 0, &s);
    if (!rc) rc = store_read_model(s, &id);
    if (!rc) rc = vecindex_open(s, id.dim, &vi);
    if (!rc) rc = ann_build(s, &vi, factory, &info);
    if (!rc) {
        if (info.updated)
            printf("updated %s-ann: %s, %zu vectors added, %zu in all\n", db, info.factory, info.added, info.total);
        else
            printf("built %s-ann: %s, %zu vectors (trained on %zu)\n", db, info.factory, info.total,
                   info.trained_on);
        rc = cli_flush_stdout();
    }
    vecindex_close(&vi);
    store_close(s);
    return rc;
}

int cmd_ann(int argc, char **argv)
{
    const char *db = NULL, *factory = NULL, *val = NULL, *action = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_ann, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            if (action) return cli_usage_error(a.cmd, "unexpected argument '%s'", argv[a.i]);
            action = argv[a.i];
        } else if ((r = cli_args_value(&a, "--db", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            db = val;
        } else if ((r = cli_args_value(&a, "--factory", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            if (!val[0]) return cli_usage_error(a.cmd, "--factory needs a FAISS factory string");
            factory = val;
        } else {
            return cli_unknown_option(&a);
        }
    }
    if (!action) return cli_usage_error(a.cmd, "give an action: build");
    if (strcmp(action, "build") != 0) return cli_usage_error(a.cmd, "unknown action '%s' (try `build`)", action);
    return ann_build_run(store_db_path(db), factory);
}
