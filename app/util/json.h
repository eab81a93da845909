/*
 * json.h - a small streaming JSON writer for the clipdex program. It tracks
 * nesting so commas come out right, escapes strings per RFC 8259 and turns
 * invalid UTF-8 into U+FFFD, so whatever bytes a file name or text holds the
 * output is always valid JSON.
 */
#ifndef CLIPDEX_APP_JSON_H
#define CLIPDEX_APP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json_out {
    FILE *f;
    int depth;                       /* open containers */
    int after_key;                   /* a key was written; its value comes next */
    unsigned char has_item[JSON_MAX_DEPTH]; /* container at this depth holds an item */
} json_out;

void json_init(json_out *j, FILE *f);

void json_obj_begin(json_out *j);
void json_obj_end(json_out *j);
void json_arr_begin(json_out *j);
void json_arr_end(json_out *j);
/* Ends a top-level value with a newline (JSON Lines). */
void json_newline(json_out *j);

/* An object key; `key` is NUL-terminated and escaped like any string. */
void json_key(json_out *j, const char *key);

/* Strings: `len` bytes, any content (NUL, control bytes, invalid UTF-8). */
void json_strn(json_out *j, const char *s, size_t len);
void json_str(json_out *j, const char *s); /* NULL writes null */
/* Numbers: doubles with %.9g (non-finite values are written as null). */
void json_num(json_out *j, double v);
/* v with `decimals` digits after the point (wall-clock seconds need more
 * than json_num's 9 significant digits); null when not finite. */
void json_fixed(json_out *j, double v, int decimals);
void json_int(json_out *j, long long v);
void json_uint(json_out *j, unsigned long long v);
void json_bool(json_out *j, int v);
void json_null(json_out *j);
void json_floats(json_out *j, const float *v, size_t n);
void json_ints(json_out *j, const int32_t *v, size_t n);

/* Writes `len` bytes of `s` as a quoted JSON string to `f`: escapes '"', '\\',
 * control characters, DEL, U+2028 and U+2029, and replaces each maximal
 * invalid UTF-8 subpart by U+FFFD (as Python's errors="replace" does). */
void json_write_string(FILE *f, const char *s, size_t len);

#endif
