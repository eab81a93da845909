/*
 * lists.c - the bottom of the zero-shot code, used by zeroshot.c and
 * prompts_load.c alike (neither calls the other's helpers): label and
 * template lists (split from a comma list, or read one per line from a
 * file), filling a template with a label, and L2 normalization of class
 * vectors.
 */
#include "zeroshot/zeroshot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"

void zs_list_free(zs_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

int zs_list_add(zs_list *l, const char *s, size_t len)
{
    if (l->n >= ZS_MAX_LIST) return -1;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    l->v[l->n++] = c;
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Adds s[0..len) with surrounding white space trimmed, unless empty. */
static int add_trimmed(zs_list *l, const char *s, size_t len)
{
    while (len && is_space(*s)) s++, len--;
    while (len && is_space(s[len - 1])) len--;
    if (len == 0) return 0;
    return zs_list_add(l, s, len);
}

int zs_list_split(const char *csv, zs_list *out)
{
    const char *p = csv;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (add_trimmed(out, p, len)) {
            report_error("too many labels or out of memory");
            return APP_FAIL;
        }
        if (!c) break;
        p = c + 1;
    }
    return 0;
}

int zs_list_file(const char *path, zs_list *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        report_error("cannot open '%s': %s", path, strerror(errno));
        return APP_FAIL;
    }
    char line[ZS_MAX_LINE + 2];
    long no = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        no++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            report_error("'%s' line %ld: longer than %d bytes", path, no, ZS_MAX_LINE);
            rc = APP_FAIL;
            break;
        }
        const char *s = line;
        while (*s && is_space(*s)) s++;
        if (*s == '#') continue;
        if (add_trimmed(out, line, len)) {
            report_error("'%s': too many lines or out of memory", path);
            rc = APP_FAIL;
            break;
        }
    }
    if (!rc && ferror(f)) {
        report_error("cannot read '%s': %s", path, strerror(errno));
        rc = APP_FAIL;
    }
    fclose(f);
    if (!rc && out->n == 0) {
        report_error("'%s' holds no entries", path);
        rc = APP_FAIL;
    }
    return rc;
}

char *zs_fill(const char *tmpl, const char *label)
{
    size_t n_holes = 0, tl = strlen(tmpl), ll = strlen(label);
    for (const char *p = tmpl; (p = strstr(p, "{}")) != NULL; p += 2) n_holes++;
    if (n_holes > 0 && ll > (SIZE_MAX - tl - 1) / n_holes) return NULL;
    char *s = malloc(tl + n_holes * ll + 1), *o = s;
    if (!s) return NULL;
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(o, label, ll);
            o += ll;
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return s;
}

void zs_normalize(float *v, size_t dim)
{
    double n2 = 0;
    for (size_t i = 0; i < dim; i++) n2 += (double)v[i] * v[i];
    if (n2 <= 0) return;
    double inv = 1.0 / sqrt(n2);
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] * inv);
}
