/*
 * names.c - model names: the aliases users know from other CLIP tools, the
 * shape of a hub repository name (which also becomes a directory name, so
 * it is checked strictly: org/name of [A-Za-z0-9._-], no "..", no leading
 * '.' or '-'), weight type names, the hub endpoint and the cache paths.
 */
#include "hub.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clipdex.h"

int hub_fail(hub_err *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static const struct {
    const char *alias, *repo;
} aliases[] = {
    {"ViT-B-32", "openai/clip-vit-base-patch32"},
    {"ViT-B-16", "openai/clip-vit-base-patch16"},
    {"ViT-L-14", "openai/clip-vit-large-patch14"},
    {"ViT-L-14-336", "openai/clip-vit-large-patch14-336"},
};
#define N_ALIASES (sizeof aliases / sizeof aliases[0])

/* Compares an alias ignoring case and treating '/' as '-' (ViT-B/32). */
static int alias_eq(const char *alias, const char *s)
{
    for (; *alias && *s; alias++, s++) {
        char c = *s == '/' ? '-' : *s;
        if (tolower((unsigned char)*alias) != tolower((unsigned char)c)) return 0;
    }
    return *alias == *s;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* One part of org/name: 1..96 name characters, not starting with '.' or '-'. */
static size_t name_part(const char *s)
{
    size_t n = 0;
    while (name_char(s[n])) n++;
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return 0;
    return n;
}

int hub_repo_of(const char *name, char *repo, size_t len)
{
    for (size_t i = 0; i < N_ALIASES; i++)
        if (alias_eq(aliases[i].alias, name)) return snprintf(repo, len, "%s", aliases[i].repo) < (int)len ? 0 : -1;
    size_t a = name_part(name);
    if (!a || name[a] != '/') return -1;
    size_t b = name_part(name + a + 1);
    if (!b || name[a + 1 + b] != '\0' || strstr(name, "..")) return -1;
    return snprintf(repo, len, "%s", name) < (int)len ? 0 : -1;
}

const char *hub_alias_of(const char *repo)
{
    for (size_t i = 0; i < N_ALIASES; i++)
        if (strcmp(aliases[i].repo, repo) == 0) return aliases[i].alias;
    return NULL;
}

static const struct {
    const char *name;
    int type;
} types[] = {
    {"f32", CLIPDEX_TYPE_F32},   {"f16", CLIPDEX_TYPE_F16},   {"q8", CLIPDEX_TYPE_Q8_0},
    {"q5", CLIPDEX_TYPE_Q5_0},   {"q4", CLIPDEX_TYPE_Q4_0},   {"q8_0", CLIPDEX_TYPE_Q8_0},
    {"q5_0", CLIPDEX_TYPE_Q5_0}, {"q4_0", CLIPDEX_TYPE_Q4_0},
};

int hub_type_parse(const char *s)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(s, types[i].name) == 0) return types[i].type;
    return -1;
}

const char *hub_type_name(int type)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (types[i].type == type) return types[i].name;
    return "?";
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

const char *hub_endpoint(char *buf, size_t len)
{
    const char *v = env_nonempty("CLIPDEX_HUB_URL");
    if (!v) v = env_nonempty("HF_ENDPOINT");
    if (!v) v = "https://huggingface.co";
    snprintf(buf, len, "%s", v);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '/') buf[--n] = '\0';
    return buf;
}

int hub_path_join(char *out, size_t len, const char *dir, const char *name, hub_err *e)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) return hub_fail(e, "path '%s/%s' is too long", dir, name);
    return 0;
}

int hub_home(char *out, size_t len, hub_err *e)
{
    const char *v;
    int n;
    if ((v = env_nonempty("CLIPDEX_HOME")))
        n = snprintf(out, len, "%s", v);
    else if ((v = env_nonempty("XDG_CACHE_HOME")))
        n = snprintf(out, len, "%s/clipdex", v);
    else if ((v = env_nonempty("HOME")))
        n = snprintf(out, len, "%s/.cache/clipdex", v);
    else
        return hub_fail(e, "no model cache: set CLIPDEX_HOME (or HOME)");
    if (n < 0 || (size_t)n >= len) return hub_fail(e, "the model cache path '%s' is too long", v);
    return 0;
}

int hub_model_dir(const char *repo, char *out, size_t len, hub_err *e)
{
    char home[HUB_PATH_MAX];
    if (hub_home(home, sizeof home, e)) return -1;
    const char *slash = strchr(repo, '/');
    int n = snprintf(out, len, "%s/models/%.*s--%s", home, (int)(slash - repo), repo, slash + 1);
    if (n < 0 || (size_t)n >= len) return hub_fail(e, "the model cache path '%s' is too long", home);
    return 0;
}
