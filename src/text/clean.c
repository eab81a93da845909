/*
 * clean.c - the text cleaning of OpenAI's simple_tokenizer, on code points:
 *
 *   text = ftfy.fix_text(text)                       cdx_ftfy_segment, per segment
 *   text = html.unescape(html.unescape(text)).strip()  \
 *   text = re.sub(r'\s+', ' ', text).strip()            > cdx_clean_post
 *   text = text.lower()                                /
 *
 * ftfy is reproduced for well-formed text (ftfy 6 defaults): per segment and
 * until nothing changes, unescape_html (not once a segment has held '<'),
 * fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
 * fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC.
 * Left out on purpose: fix_encoding, the mojibake repair ("Ã©" -> "é"), a
 * heuristic that rarely matters for typed queries; and fix_surrogates, as no
 * surrogate can come out of UTF-8 decoding.
 *
 * Invariants: every pass reads one buffer and writes another (never in
 * place); output grows by a small constant factor per pass at most; every
 * loop is bounded by its input length (ftfy's fixed-point loop also by
 * CDX_FTFY_MAX_WORK). Tables come from Python itself (tools/gen_*.py).
 * Unicode properties (NFC, categories, simple lower-case) come from utf8proc,
 * whose Unicode version may differ from the reference's for characters
 * assigned recently.
 */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text/text.h"

struct html_entity {
    const char *name; /* without '&', with ';' if the entity has one */
    int n;
    uint32_t cp[2];
};

struct ftfy_entity {
    const char *name; /* upper-case, with ';' */
    int n;
    uint32_t cp[3];
};

#include "text/html_entities.inc"
#include "text/text_tables.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------ */
/* Table lookups                                                             */
/* ------------------------------------------------------------------------ */

/* Copies cps into an ASCII C string; 0 if too long or not ASCII. */
static int to_ascii(const uint32_t *v, size_t n, char *buf, size_t cap)
{
    if (n + 1 > cap) return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] >= 0x80 || v[i] == 0) return 0;
        buf[i] = (char)v[i];
    }
    buf[n] = '\0';
    return 1;
}

static const struct html_entity *html5_find(const char *name)
{
    size_t lo = 0, hi = N_ELEMS(html5_entities);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(html5_entities[mid].name, name);
        if (c == 0) return &html5_entities[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static const struct ftfy_entity *ftfy_upper_find(const char *name)
{
    size_t lo = 0, hi = N_ELEMS(ftfy_upper_entities);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ftfy_upper_entities[mid].name, name);
        if (c == 0) return &ftfy_upper_entities[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int u32_sorted_has(const uint32_t *v, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] == c) return 1;
        if (v[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* Python html._replace_charref for a numeric reference. `num` saturates at
 * 0x110000 (Python >= 3.11 raises ValueError past 4300 digits instead).
 * Writes 0 or 1 code point; returns the count. */
static int charref(uint64_t num, uint32_t *out)
{
    for (size_t i = 0; i < N_ELEMS(html_invalid_charrefs); i++) {
        if (html_invalid_charrefs[i][0] == num) {
            *out = html_invalid_charrefs[i][1];
            return 1;
        }
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        *out = 0xFFFD;
        return 1;
    }
    if (u32_sorted_has(html_invalid_codepoints, N_ELEMS(html_invalid_codepoints), (uint32_t)num))
        return 0;
    *out = (uint32_t)num;
    return 1;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_hex(uint32_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static int is_alnum(uint32_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int hex_val(uint32_t c)
{
    return is_digit(c) ? (int)(c - '0') : (int)((c | 0x20) - 'a' + 10);
}

/* Accumulates a digit, saturating at 0x110000. */
static uint64_t acc(uint64_t num, unsigned base, int d)
{
    num = num * base + (uint64_t)d;
    return num > 0x110000 ? 0x110000 : num;
}

/* ------------------------------------------------------------------------ */
/* Python's html.unescape                                                    */
/* ------------------------------------------------------------------------ */

/* Characters a named reference cannot hold: [^\t\n\f <&#;]. */
static int name_stop(uint32_t c)
{
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' ||
           c == '#' || c == ';';
}

/* Python's html.unescape on in -> out (out is overwritten). */
static int html_unescape(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    const uint32_t *t = in->v;
    size_t n = in->n, i = 0;
    out->n = 0;
    if (cdx_u32_reserve(out, n)) return CLIPDEX_E_NOMEM;
    while (i < n) {
        if (t[i] != '&') {
            if (cdx_u32_push(out, t[i++])) return CLIPDEX_E_NOMEM;
            continue;
        }
        size_t j = i + 1;
        if (j < n && t[j] == '#') {
            /* &#[0-9]+;?  or  &#[xX][0-9a-fA-F]+;? */
            size_t k;
            uint64_t num = 0;
            if (j + 1 < n && is_digit(t[j + 1])) {
                for (k = j + 1; k < n && is_digit(t[k]); k++) num = acc(num, 10, (int)(t[k] - '0'));
            } else if (j + 2 < n && (t[j + 1] == 'x' || t[j + 1] == 'X') && is_hex(t[j + 2])) {
                for (k = j + 2; k < n && is_hex(t[k]); k++) num = acc(num, 16, hex_val(t[k]));
            } else {
                if (cdx_u32_push(out, '&')) return CLIPDEX_E_NOMEM;
                i++;
                continue;
            }
            if (k < n && t[k] == ';') k++;
            uint32_t c;
            if (charref(num, &c) && cdx_u32_push(out, c)) return CLIPDEX_E_NOMEM;
            i = k;
            continue;
        }
        /* Named: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && !name_stop(t[k])) k++;
        if (k == j) {
            if (cdx_u32_push(out, '&')) return CLIPDEX_E_NOMEM;
            i++;
            continue;
        }
        size_t end = k < n && t[k] == ';' ? k + 1 : k; /* s = t[j, end) */
        size_t len = end - j;
        char name[40];
        const struct html_entity *e = NULL;
        size_t used = len;
        if (to_ascii(t + j, len, name, sizeof name)) e = html5_find(name);
        /* Else the longest prefix of 2 .. len-1 characters that is a name. */
        for (size_t x = len - 1; !e && x >= 2; x--) {
            if (to_ascii(t + j, x, name, sizeof name) && (e = html5_find(name))) used = x;
        }
        if (e) {
            if (cdx_u32_append(out, e->cp, (size_t)e->n)) return CLIPDEX_E_NOMEM;
            if (cdx_u32_append(out, t + j + used, len - used)) return CLIPDEX_E_NOMEM;
        } else {
            if (cdx_u32_append(out, t + i, end - i)) return CLIPDEX_E_NOMEM;
        }
        i = end;
    }
    return CLIPDEX_OK;
}

/* ------------------------------------------------------------------------ */
/* ftfy fixers                                                               */
/* ------------------------------------------------------------------------ */

/* ftfy.fixes.unescape_html: &#?[0-9A-Za-z]{1,24}; through ftfy's entity
 * table (html5 names with ';' plus all-caps forms), numeric references
 * through html.unescape unless that leaves a ';'. */
static int ftfy_unescape(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    const uint32_t *t = in->v;
    size_t n = in->n, i = 0;
    out->n = 0;
    if (cdx_u32_reserve(out, n)) return CLIPDEX_E_NOMEM;
    while (i < n) {
        if (t[i] != '&') {
            if (cdx_u32_push(out, t[i++])) return CLIPDEX_E_NOMEM;
            continue;
        }
        int hash = i + 1 < n && t[i + 1] == '#';
        size_t k = i + 1 + (size_t)hash, m = k;
        while (m < n && m - k < 25 && is_alnum(t[m])) m++;
        if (m == k || m - k > 24 || m >= n || t[m] != ';') {
            if (cdx_u32_push(out, '&')) return CLIPDEX_E_NOMEM;
            i++;
            continue;
        }
        /* Matched t[i..m] = "&" [#] body ";" */
        const uint32_t *rep = NULL;
        size_t rep_n = 0;
        uint32_t c = 0;
        if (!hash) {
            char name[32];
            to_ascii(t + i + 1, m + 1 - (i + 1), name, sizeof name);
            const struct html_entity *e = html5_find(name);
            const struct ftfy_entity *f = e ? NULL : ftfy_upper_find(name);
            if (e) rep = e->cp, rep_n = (size_t)e->n;
            else if (f) rep = f->cp, rep_n = (size_t)f->n;
        } else {
            /* html.unescape("&#...;") keeps no ';' only when the body is all
             * decimal digits or x + all hex digits, and the result is not ';'. */
            size_t b = k;
            int base = 10;
            uint64_t num = 0;
            if (t[b] == 'x' || t[b] == 'X') base = 16, b++;
            int ok = b < m;
            for (size_t p = b; ok && p < m; p++) {
                ok = base == 10 ? is_digit(t[p]) : is_hex(t[p]);
                if (ok) num = acc(num, (unsigned)base, hex_val(t[p]));
            }
            if (ok) {
                if (!charref(num, &c)) { /* decodes to '': dropped */
                    i = m + 1;
                    continue;
                }
                if (c != ';') rep = &c, rep_n = 1;
            }
        }
        if (rep) {
            if (cdx_u32_append(out, rep, rep_n)) return CLIPDEX_E_NOMEM;
        } else {
            if (cdx_u32_append(out, t + i, m + 1 - i)) return CLIPDEX_E_NOMEM;
        }
        i = m + 1;
    }
    return CLIPDEX_OK;
}

/* Windows-1252 for 0x80..0x9F; the five undefined bytes map to themselves
 * (ftfy's "sloppy" codec). */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

/* ftfy LIGATURES: {from, to...}. */
static const uint32_t ligatures[][4] = {
    {0x0132, 'I', 'J', 0},      {0x0133, 'i', 'j', 0},      {0x0149, 0x02BC, 'n', 0},
    {0x01C4, 'D', 0x017D, 0},   {0x01C5, 'D', 0x017E, 0},   {0x01C6, 'd', 0x017E, 0},
    {0x01C7, 'L', 'J', 0},      {0x01C8, 'L', 'j', 0},      {0x01C9, 'l', 'j', 0},
    {0x01CA, 'N', 'J', 0},      {0x01CB, 'N', 'j', 0},      {0x01CC, 'n', 'j', 0},
    {0x01F1, 'D', 'Z', 0},      {0x01F2, 'D', 'z', 0},      {0x01F3, 'd', 'z', 0},
    {0xFB00, 'f', 'f', 0},      {0xFB01, 'f', 'i', 0},      {0xFB02, 'f', 'l', 0},
    {0xFB03, 'f', 'f', 'i'},    {0xFB04, 'f', 'f', 'l'},    {0xFB05, 0x017F, 't', 0},
    {0xFB06, 's', 't', 0},
};

/* uncurl_quotes: [\u201c-\u201f] -> '"', then [\u02bc\u2018-\u201b] -> '\''. */
static uint32_t uncurl(uint32_t c)
{
    if (c >= 0x201C && c <= 0x201F) return '"';
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) return '\'';
    return c;
}

/* fix_character_width then uncurl_quotes on one character. */
static int width_uncurl(uint32_t c, struct cdx_u32buf *out)
{
    if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) {
        size_t lo = 0, hi = N_ELEMS(width_map);
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (width_map[mid][0] == c) {
                if (cdx_u32_push(out, uncurl(width_map[mid][1]))) return CLIPDEX_E_NOMEM;
                if (width_map[mid][2] && cdx_u32_push(out, uncurl(width_map[mid][2])))
                    return CLIPDEX_E_NOMEM;
                return CLIPDEX_OK;
            }
            if (width_map[mid][0] < c) lo = mid + 1;
            else hi = mid;
        }
    }
    return cdx_u32_push(out, uncurl(c));
}

/* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes
 * and fix_line_breaks in one pass: the first four map characters one by one
 * (and compose), and none of them makes or takes a line break. */
static int ftfy_charwise(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    const uint32_t *t = in->v;
    size_t n = in->n;
    out->n = 0;
    if (cdx_u32_reserve(out, n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t[i];
        if (c == '\r') {
            if (i + 1 < n && t[i + 1] == '\n') i++;
            c = '\n';
        } else if (c == 0x2028 || c == 0x2029) {
            c = '\n';
        } else if (c >= 0x80 && c <= 0x9F) {
            c = cp1252_c1[c - 0x80]; /* so U+0085 becomes an ellipsis, not '\n' */
        }
        if ((c >= 0x0132 && c <= 0x01F3) || (c >= 0xFB00 && c <= 0xFB06)) {
            size_t l;
            for (l = 0; l < N_ELEMS(ligatures) && ligatures[l][0] != c; l++) {}
            if (l < N_ELEMS(ligatures)) {
                for (int q = 1; q < 4 && ligatures[l][q]; q++) {
                    if (width_uncurl(ligatures[l][q], out)) return CLIPDEX_E_NOMEM;
                }
                continue;
            }
        }
        if (width_uncurl(c, out)) return CLIPDEX_E_NOMEM;
    }
    return CLIPDEX_OK;
}

static int removed_control(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* Python re's \d on str: Unicode category Nd. */
static int is_decimal(uint32_t c)
{
    if (c < 0x80) return is_digit(c);
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ND;
}

/* remove_terminal_escapes (\x1b\[(\d|;)*[a-zA-Z]) then remove_control_chars. */
static int ftfy_escapes_controls(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    const uint32_t *t = in->v;
    size_t n = in->n;
    out->n = 0;
    if (cdx_u32_reserve(out, n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = t[i];
        if (c == 0x1B && i + 1 < n && t[i + 1] == '[') {
            size_t k = i + 2;
            while (k < n && (t[k] == ';' || is_decimal(t[k]))) k++;
            if (k < n && t[k] < 0x80 && ((t[k] | 0x20) >= 'a' && (t[k] | 0x20) <= 'z')) {
                i = k;
                continue;
            }
        }
        if (!removed_control(c)) out->v[out->n++] = c; /* never grows */
    }
    return CLIPDEX_OK;
}

/* unicodedata.normalize('NFC') through utf8proc. */
static int nfc(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    out->n = 0;
    int quick = 1; /* below U+0300 every character is NFC-stable */
    for (size_t i = 0; i < in->n && quick; i++) quick = in->v[i] < 0x300;
    if (quick) return cdx_u32_append(out, in->v, in->n);

    size_t bytes;
    if (cdx_mul(in->n, 4, &bytes)) return CLIPDEX_E_NOMEM;
    uint8_t *u8 = malloc(bytes ? bytes : 1);
    if (!u8) return CLIPDEX_E_NOMEM;
    size_t len = 0;
    for (size_t i = 0; i < in->n; i++) len += cdx_utf8_put(in->v[i], u8 + len);
    const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    utf8proc_ssize_t m = utf8proc_decompose(u8, (utf8proc_ssize_t)len, NULL, 0, opt);
    int rc = CLIPDEX_E_INTERNAL;
    if (m >= 0 && !cdx_u32_reserve(out, (size_t)m + 1)) {
        utf8proc_int32_t *buf = (utf8proc_int32_t *)out->v; /* same size and layout */
        utf8proc_ssize_t m2 = utf8proc_decompose(u8, (utf8proc_ssize_t)len, buf, m, opt);
        if (m2 == m) {
            m2 = utf8proc_normalize_utf32(buf, m, opt);
            if (m2 >= 0) {
                out->n = (size_t)m2;
                rc = CLIPDEX_OK;
            }
        }
    } else if (m >= 0) {
        rc = CLIPDEX_E_NOMEM;
    }
    free(u8);
    return rc;
}

static int same(const struct cdx_u32buf *a, const struct cdx_u32buf *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

int cdx_ftfy_segment(struct cdx_u32buf *seg, int unescape_html)
{
    struct cdx_u32buf a = *seg, b = {0}, c = {0};
    size_t work = 0;
    int rc = CLIPDEX_OK;
    for (;;) {
        /* a -> (b) -> c -> b -> c; a holds this pass's input. */
        const struct cdx_u32buf *src = &a;
        if (unescape_html) {
            if ((rc = ftfy_unescape(&a, &b))) break;
            src = &b;
        }
        if ((rc = ftfy_charwise(src, &c))) break;
        if ((rc = ftfy_escapes_controls(&c, &b))) break;
        if ((rc = nfc(&b, &c))) break;
        int done = same(&a, &c);
        struct cdx_u32buf t = a;
        a = c;
        c = t;
        if (done) break;
        if (cdx_add(work, a.n + 1, &work) || work > CDX_FTFY_MAX_WORK) break;
    }
    cdx_u32_free(&b);
    cdx_u32_free(&c);
    *seg = a;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Whitespace and lower-case                                                 */
/* ------------------------------------------------------------------------ */

/* Python str.isspace (what str.strip() removes). */
static int py_isspace(uint32_t c) { return cdx_is_regex_space(c) || (c >= 0x1C && c <= 0x1F); }

static int case_class(uint32_t c)
{
    size_t lo = 0, hi = N_ELEMS(case_ranges);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < case_ranges[mid][0]) hi = mid;
        else if (c > case_ranges[mid][1]) lo = mid + 1;
        else return (int)case_ranges[mid][2];
    }
    return 0;
}

/* CPython's handle_capital_sigma: U+03A3 at i lowers to final U+03C2 when
 * preceded by a cased letter and not followed by one, skipping
 * case-ignorable characters both ways. */
static uint32_t lower_sigma(const uint32_t *t, size_t n, size_t i)
{
    size_t j = i;
    int cls = 0;
    while (j > 0) {
        cls = case_class(t[--j]);
        if (cls != CASE_IGNORABLE) break;
    }
    int final = j < i && cls == CASE_CASED;
    if (final) {
        for (j = i + 1; j < n; j++) {
            cls = case_class(t[j]);
            if (cls != CASE_IGNORABLE) break;
        }
        final = j == n || cls != CASE_CASED;
    }
    return final ? 0x3C2 : 0x3C3;
}

/* Python str.lower(): utf8proc's simple mapping plus the one unconditional
 * full mapping (U+0130 -> "i\u0307") and the Final_Sigma rule. */
static int py_lower(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    out->n = 0;
    if (cdx_u32_reserve(out, in->n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c < 0x80) {
            if (c >= 'A' && c <= 'Z') c += 32;
        } else if (c == 0x130) {
            if (cdx_u32_push(out, 'i')) return CLIPDEX_E_NOMEM;
            c = 0x307;
        } else if (c == 0x3A3) {
            c = lower_sigma(in->v, in->n, i);
        } else {
            c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        }
        if (cdx_u32_push(out, c)) return CLIPDEX_E_NOMEM;
    }
    return CLIPDEX_OK;
}

/* strip, re.sub(r'\s+', ' '), strip. */
static int fold_space(const struct cdx_u32buf *in, struct cdx_u32buf *out)
{
    size_t a = 0, z = in->n;
    while (a < z && py_isspace(in->v[a])) a++;
    while (z > a && py_isspace(in->v[z - 1])) z--;
    out->n = 0;
    if (cdx_u32_reserve(out, z - a)) return CLIPDEX_E_NOMEM;
    for (size_t i = a; i < z; i++) {
        uint32_t c = in->v[i];
        if (cdx_is_regex_space(c)) {
            while (i + 1 < z && cdx_is_regex_space(in->v[i + 1])) i++;
            c = ' ';
        }
        out->v[out->n++] = c;
    }
    /* The second strip: isspace also holds U+001C..U+001F, which \s lacks. */
    size_t s = 0;
    while (s < out->n && py_isspace(out->v[s])) s++;
    while (out->n > s && py_isspace(out->v[out->n - 1])) out->n--;
    if (s) {
        memmove(out->v, out->v + s, (out->n - s) * sizeof *out->v);
        out->n -= s;
    }
    return CLIPDEX_OK;
}

int cdx_clean_post(struct cdx_u32buf *t)
{
    struct cdx_u32buf a = {0};
    int rc;
    if ((rc = html_unescape(t, &a)) || (rc = html_unescape(&a, t)) ||
        (rc = fold_space(t, &a)) || (rc = py_lower(&a, t))) {
        cdx_u32_free(&a);
        return rc;
    }
    cdx_u32_free(&a);
    return CLIPDEX_OK;
}

int cdx_text_clean(const char *text, size_t len, char **out, size_t *out_len)
{
    const uint8_t *s = (const uint8_t *)text;
    struct cdx_u32buf all = {0}, seg = {0};
    size_t pos = 0;
    int unescape = 1, rc = CLIPDEX_OK;
    *out = NULL;
    while (pos < len && !rc) {
        seg.n = 0;
        while (pos < len && seg.n < CDX_FTFY_MAX_SEGMENT) {
            uint32_t c = cdx_utf8_next(s, len, &pos);
            if ((rc = cdx_u32_push(&seg, c))) break;
            if (c == '\n') break;
        }
        for (size_t i = 0; i < seg.n && unescape; i++) unescape = seg.v[i] != '<';
        if (!rc) rc = cdx_ftfy_segment(&seg, unescape);
        if (!rc) rc = cdx_u32_append(&all, seg.v, seg.n);
    }
    if (!rc) rc = cdx_clean_post(&all);
    if (!rc) {
        size_t bytes;
        char *o = NULL;
        if (cdx_mul(all.n, 4, &bytes) || cdx_add(bytes, 1, &bytes) || !(o = malloc(bytes))) {
            rc = CLIPDEX_E_NOMEM;
        } else {
            size_t n = 0;
            for (size_t i = 0; i < all.n; i++) n += cdx_utf8_put(all.v[i], (uint8_t *)o + n);
            o[n] = '\0';
            *out = o;
            if (out_len) *out_len = n;
        }
    }
    cdx_u32_free(&all);
    cdx_u32_free(&seg);
    return rc;
}
