/*
 * json.c - the JSON writer: comma and nesting bookkeeping, RFC 8259 string
 * escaping with U+FFFD for invalid UTF-8, and number formatting.
 */
#include "util/json.h"

#include <math.h>
#include <string.h>

void json_init(json_out *j, FILE *f)
{
    j->f = f;
    j->depth = 0;
    j->after_key = 0;
    memset(j->has_item, 0, sizeof j->has_item);
}

/* Called before every value and key: writes the separating comma. */
static void json_sep(json_out *j)
{
    if (j->after_key) {
        j->after_key = 0;
        return;
    }
    if (j->depth > 0 && j->depth <= JSON_MAX_DEPTH) {
        if (j->has_item[j->depth - 1]) fputc(',', j->f);
        j->has_item[j->depth - 1] = 1;
    }
}

static void json_open(json_out *j, int c)
{
    json_sep(j);
    fputc(c, j->f);
    if (j->depth < JSON_MAX_DEPTH) j->has_item[j->depth] = 0;
    j->depth++;
}

static void json_close(json_out *j, int c)
{
    if (j->depth > 0) j->depth--;
    fputc(c, j->f);
}

void json_obj_begin(json_out *j) { json_open(j, '{'); }
void json_obj_end(json_out *j) { json_close(j, '}'); }
void json_arr_begin(json_out *j) { json_open(j, '['); }
void json_arr_end(json_out *j) { json_close(j, ']'); }
void json_newline(json_out *j) { fputc('\n', j->f); }

void json_key(json_out *j, const char *key)
{
    json_sep(j);
    json_write_string(j->f, key, strlen(key));
    fputc(':', j->f);
    j->after_key = 1;
}

void json_strn(json_out *j, const char *s, size_t len)
{
    json_sep(j);
    json_write_string(j->f, s, len);
}

void json_str(json_out *j, const char *s)
{
    if (!s) {
        json_null(j);
        return;
    }
    json_strn(j, s, strlen(s));
}

static void json_put_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.9g", v);
    else
        fputs("null", f);
}

void json_num(json_out *j, double v)
{
    json_sep(j);
    json_put_num(j->f, v);
}

void json_fixed(json_out *j, double v, int decimals)
{
    json_sep(j);
    if (isfinite(v))
        fprintf(j->f, "%.*f", decimals, v);
    else
        fputs("null", j->f);
}

void json_int(json_out *j, long long v)
{
    json_sep(j);
    fprintf(j->f, "%lld", v);
}

void json_uint(json_out *j, unsigned long long v)
{
    json_sep(j);
    fprintf(j->f, "%llu", v);
}

void json_bool(json_out *j, int v)
{
    json_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(json_out *j)
{
    json_sep(j);
    fputs("null", j->f);
}

void json_floats(json_out *j, const float *v, size_t n)
{
    json_sep(j);
    fputc('[', j->f);
    for (size_t i = 0; i < n; i++) {
        if (i) fputc(',', j->f);
        json_put_num(j->f, v[i]);
    }
    fputc(']', j->f);
}

void json_ints(json_out *j, const int32_t *v, size_t n)
{
    json_sep(j);
    fputc('[', j->f);
    for (size_t i = 0; i < n; i++) {
        if (i) fputc(',', j->f);
        fprintf(j->f, "%ld", (long)v[i]);
    }
    fputc(']', j->f);
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not
 * one; then *bad receives the length of its maximal invalid subpart (the
 * bytes one U+FFFD replaces, at least 1). Follows Unicode table 3-7. */
static size_t utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        if (c == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;      /* no overlongs */
        if (c == 0xF4) hi = 0x8F;      /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        unsigned b = s[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (i == need) return need;
    *bad = i;
    return 0;
}

void json_write_string(FILE *f, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    fputc('"', f);
    while (i < len) {
        unsigned c = s[i];
        size_t bad = 0, n = utf8_valid(s + i, len - i, &bad);
        if (n == 0) {
            fputs("\xEF\xBF\xBD", f); /* U+FFFD */
            i += bad;
            continue;
        }
        if (n == 1) {
            switch (c) {
            case '"': fputs("\\\"", f); break;
            case '\\': fputs("\\\\", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            default:
                if (c < 0x20 || c == 0x7F)
                    fprintf(f, "\\u%04x", c);
                else
                    fputc((int)c, f);
            }
        } else if (n == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)) {
            /* U+2028/U+2029 are valid JSON but break JavaScript string literals. */
            fprintf(f, "\\u%04x", 0x2000u | (s[i + 2] == 0xA8 ? 0x28u : 0x29u));
        } else {
            fwrite(s + i, 1, n, f);
        }
        i += n;
    }
    fputc('"', f);
}
