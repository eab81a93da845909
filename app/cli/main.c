/*
 * main.c - the clipdex program's entry point: global flags (--version,
 * --help), `clipdex help [COMMAND]`, and dispatch to the commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_detect.h"
#include "cli/cmd_quantize.h"
#include "cli/cmd_serve.h"
#include "cli/cmd_store.h"
#include "cli/cmd_watch.h"
#include "cli/cmd_zeroshot.h"

static const char usage_main[] =
    "Usage: clipdex COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "A CLIP engine: embeds images and texts into one vector space.\n"
    "\n"
    "Commands:\n"
    "  embed      embed images and texts, one JSON line per input\n"
    "  compare    score one image or text against prompts (cosine, logit, probability)\n"
    "  tokenize   print the CLIP token ids of strings\n"
    "  info       describe a model: architecture, parameters, dtype, file\n"
    "  quantize   write a model as one GGUF file with F16/Q8/Q5/Q4 weights\n"
    "  index      add the images under folders to an index database\n"
    "  search     find indexed images by text, image or both\n"
    "  watch      match live video inputs against text prompts, print events\n"
    "  merge      merge shard databases (index --shard) into one index\n"
    "  classify   zero-shot: the top labels of images, with probabilities\n"
    "  detect     find people (or any COCO class) in images: boxes, crops\n"
    "  prompts    save text embeddings to a file for --prompts\n"
    "  eval       zero-shot accuracy over a labelled dataset folder\n"
    "  serve      serve the encoders, search and a search page over HTTP\n"
    "  model      get, list and remove models by name (Hugging Face hub)\n"
    "  help       print this text, or `clipdex help COMMAND` for a command's\n"
    "\n"
    "Options:\n"
    "  -h, --help     print this text\n"
    "  --version      print the version\n"
    "\n"
    "The model may be given by --model DIR|NAME or the CLIPDEX_MODEL\n"
    "environment variable; the default is ViT-B-32 once `clipdex model get\n"
    "ViT-B-32` has fetched it. Exit codes: 0 ok, 1 an input failed or a\n"
    "runtime error, 2 usage error, 3 the model could not be loaded.\n"
    "Run `clipdex COMMAND --help` for a command's options.\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;
} command;

static const command commands[] = {
    {"embed", cmd_embed, usage_embed},
    {"compare", cmd_compare, usage_compare},
    {"tokenize", cmd_tokenize, usage_tokenize},
    {"info", cmd_info, usage_info},
    {"quantize", cmd_quantize, usage_quantize},
    {"index", cmd_index, usage_index},
    {"search", cmd_search, usage_search},
    {"watch", cmd_watch, usage_watch},
    {"merge", cmd_merge, usage_merge},
    {"ann", cmd_ann, usage_ann},
    {"classify", cmd_classify, usage_classify},
    {"detect", cmd_detect, usage_detect},
    {"prompts", cmd_prompts, usage_prompts},
    {"eval", cmd_eval, usage_eval},
    {"serve", cmd_serve, usage_serve},
    {"model", cmd_model, usage_model},
};

static const command *command_find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/* `clipdex help [COMMAND]` */
static int cmd_help(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0) {
        fputs(usage_main, stdout);
        return cli_flush_stdout();
    }
    if (argc > 2) return cli_usage_error("help", "too many arguments");
    const command *c = command_find(argv[1]);
    if (!c) return cli_usage_error("help", "unknown command '%s'", argv[1]);
    fputs(c->usage, stdout);
    return cli_flush_stdout();
}

int main(int argc, char **argv)
{
    report_set_sink(cli_report); /* what the layers below report goes to stderr */
    if (argc < 2) {
        fputs(usage_main, stderr);
        return APP_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("clipdex %s\n", clipdex_version());
        return cli_flush_stdout();
    }
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        fputs(usage_main, stdout);
        return cli_flush_stdout();
    }
    if (strcmp(name, "help") == 0) return cmd_help(argc - 1, argv + 1);
    const command *c = command_find(name);
    if (!c) {
        if (name[0] == '-')
            fprintf(stderr, "clipdex: unknown option '%s'\n", name);
        else
            fprintf(stderr, "clipdex: unknown command '%s'\n", name);
        fputs("Try 'clipdex --help'.\n", stderr);
        return APP_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
