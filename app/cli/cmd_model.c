/*
 * cmd_model.c - `clipdex model get|list|rm`: models by name, downloaded
 * from the Hugging Face hub into the cache (app/hub/). This file only
 * parses arguments and prints; the download with its progress report is
 * cli/fetch.c (shared with --download).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "hub/hub.h"

const char usage_model[] =
    "Usage: clipdex model get NAME [--type f32|f16|q8|q5|q4]\n"
    "       clipdex model list\n"
    "       clipdex model rm NAME\n"
    "\n"
    "Models by name. `get` downloads a model from the Hugging Face hub into the\n"
    "cache ($CLIPDEX_HOME, else $XDG_CACHE_HOME/clipdex, else ~/.cache/clipdex),\n"
    "resuming an interrupted download and checking every large file against\n"
    "the sha256 the hub publishes. NAME is a hub repository in the Hugging Face\n"
    "CLIPModel or the OpenCLIP layout (openai/clip-vit-base-patch32,\n"
    "laion/CLIP-ViT-B-32-laion2B-s34B-b79K) or an alias: ViT-B-32, ViT-B-16,\n"
    "ViT-L-14, ViT-L-14-336. Every --model option then takes NAME.\n"
    "\n"
    "Options:\n"
    "  --type T    convert once after the download and use the result\n"
    "              (f32: the downloaded files as they are)\n"
    "\n"
    "Environment: HF_TOKEN (gated models), HF_ENDPOINT or CLIPDEX_HUB_URL (a\n"
    "mirror), CLIPDEX_HOME. See docs/models.md.\n";

static int model_get(int argc, char **argv)
{
    cli_args a;
    const char *name = NULL, *type_opt = NULL;
    int r, type = -1;
    cli_args_init(&a, argc, argv);
    a.cmd = "model get";
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_model, stdout);
            return cli_flush_stdout();
        } else if ((r = cli_args_value(&a, "--type", &type_opt)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if (!cli_args_positional(&a)) {
            return cli_unknown_option(&a);
        } else if (name) {
            return cli_usage_error(a.cmd, "one NAME at a time ('%s' and '%s')", name, a.argv[a.i]);
        } else {
            name = a.argv[a.i];
        }
    }
    if (!name) return cli_usage_error(a.cmd, "no model NAME (e.g. ViT-B-32 or openai/clip-vit-base-patch32)");
    if (type_opt && (type = hub_type_parse(type_opt)) < 0)
        return cli_usage_error(a.cmd, "unknown --type '%s' (f32, f16, q8, q5, q4)", type_opt);
    int rc = cli_fetch_model(name, type);
    char path[HUB_PATH_MAX];
    hub_err e;
    if (rc == APP_OK && hub_cache_find(name, path, sizeof path, &e) == 1) printf("%s\n", path);
    return rc ? rc : cli_flush_stdout();
}

static void list_one(const hub_entry *m, void *arg)
{
    const char *alias = hub_alias_of(m->repo);
    int *n = arg;
    if ((*n)++ == 0) printf("%-44s %-10s %10s  %-16s %s\n", "MODEL", "ALIAS", "SIZE", "TYPES", "USES");
    printf("%-44s %-10s %6.1f MiB  %-16s %s\n", m->repo, alias ? alias : "-", (double)m->bytes / (1024.0 * 1024.0),
           m->complete ? m->types : "(unfinished)", m->complete ? m->use : "-");
}

static int model_list(int argc, char **argv)
{
    if (argc > 1) return cli_usage_error("model list", "no arguments expected ('%s')", argv[1]);
    hub_err e;
    char home[HUB_PATH_MAX];
    int n = 0;
    if (hub_cache_list(list_one, &n, &e)) {
        cli_error("%s", e.msg);
        return APP_FAIL;
    }
    if (n == 0 && hub_home(home, sizeof home, &e) == 0)
        fprintf(stderr, "clipdex: no models in %s (get one with `clipdex model get ViT-B-32`)\n", home);
    return cli_flush_stdout();
}

static int model_rm(int argc, char **argv)
{
    if (argc != 2) return cli_usage_error("model rm", "give one model NAME");
    hub_err e;
    if (hub_cache_rm(argv[1], &e)) {
        cli_error("%s", e.msg);
        return APP_FAIL;
    }
    return APP_OK;
}

int cmd_model(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "get") == 0) return model_get(argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0 || strcmp(sub, "ls") == 0) return model_list(argc - 1, argv + 1);
    if (strcmp(sub, "rm") == 0) return model_rm(argc - 1, argv + 1);
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
        fputs(usage_model, stdout);
        return cli_flush_stdout();
    }
    return cli_usage_error("model", sub[0] ? "unknown subcommand '%s' (get, list, rm)" : "%sgive get, list or rm",
                           sub);
}
