#!/usr/bin/python3
"""ref_tokenizer.py - a Python reference for clipdex's tokenizer.

Reimplements OpenAI's CLIP `simple_tokenizer.SimpleTokenizer` + `clip.tokenize`
from the algorithm, with the parts of `ftfy.fix_text` (ftfy 6) that act on
well-formed text, because ftfy itself is not packaged by Debian:

  per line segment (split after each '\\n', at most 1,000,000 characters), and
  repeated until nothing changes: unescape_html (only until a segment holding
  '<' is seen), fix_c1_controls, fix_latin_ligatures, fix_character_width,
  uncurl_quotes, fix_line_breaks, remove_terminal_escapes,
  remove_control_chars, NFC.
  Left out: fix_encoding (mojibake repair), fix_surrogates (no surrogates can
  come out of UTF-8 decoding).

Then html.unescape twice, strip, re.sub(r'\\s+', ' '), strip, lower(), the
pre-tokenizer regex (module `regex`, IGNORECASE) and byte-level BPE.

Usage:
  /usr/bin/python3 tools/ref_tokenizer.py VOCAB.txt.gz --c-cases
    prints the expected results embedded in tests/test_tokenizer.c.
  /usr/bin/python3 tools/ref_tokenizer.py VOCAB.txt.gz < texts.json
    texts.json: a JSON list of strings, or of {"hex": "..."} objects for raw
    bytes (decoded as UTF-8 with errors='replace'). Prints one JSON object per
    text: {"clean": ..., "ids": [BPE ids, no start/end]}.
"""
import gzip
import html
import html.entities
import json
import sys
import unicodedata

import regex

# ---------------------------------------------------------------- ftfy subset

MAX_DECODE_LENGTH = 1000000


def _build_html_entities():
    entities = {}
    for name, char in html.entities.html5.items():
        if name.endswith(";"):
            entities["&" + name] = char
            if name == name.lower():
                name_upper = name.upper()
                entity_upper = "&" + name_upper
                if html.unescape(entity_upper) == entity_upper:
                    entities[entity_upper] = char.upper()
    return entities


HTML_ENTITIES = _build_html_entities()
HTML_ENTITY_RE = regex.compile(r"&#?[0-9A-Za-z]{1,24};", regex.V0)


def _unescape_fixup(m):
    text = m.group(0)
    if text in HTML_ENTITIES:
        return HTML_ENTITIES[text]
    if text.startswith("&#"):
        unescaped = html.unescape(text)
        return text if ";" in unescaped else unescaped
    return text


def unescape_html(text):
    return HTML_ENTITY_RE.sub(_unescape_fixup, text)


def fix_c1_controls(text):
    def fix(m):
        b = m.group(0).encode("latin-1")
        try:
            return b.decode("windows-1252")
        except UnicodeDecodeError:  # 0x81 0x8D 0x8F 0x90 0x9D: sloppy = latin-1
            return m.group(0)
    return regex.sub("[\x80-\x9f]", fix, text)


LIGATURES = {
    ord("Ĳ"): "IJ", ord("ĳ"): "ij", ord("ŉ"): "ʼn", ord("Ǳ"): "DZ", ord("ǲ"): "Dz",
    ord("ǳ"): "dz", ord("Ǆ"): "DŽ", ord("ǅ"): "Dž", ord("ǆ"): "dž", ord("Ǉ"): "LJ",
    ord("ǈ"): "Lj", ord("ǉ"): "lj", ord("Ǌ"): "NJ", ord("ǋ"): "Nj", ord("ǌ"): "nj",
    ord("ﬀ"): "ff", ord("ﬁ"): "fi", ord("ﬂ"): "fl", ord("ﬃ"): "ffi", ord("ﬄ"): "ffl",
    ord("ﬅ"): "ſt", ord("ﬆ"): "st",
}


def _build_width_map():
    width_map = {0x3000: " "}
    for i in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(i))
        if alt != chr(i):
            width_map[i] = alt
    return width_map


WIDTH_MAP = _build_width_map()
CONTROL_CHARS = {i: None for i in list(range(0x00, 0x09)) + [0x0B] + list(range(0x0E, 0x20))
                 + [0x7F] + list(range(0x206A, 0x2070)) + [0xFEFF] + list(range(0xFFF9, 0xFFFD))}
import re as std_re  # ftfy uses the standard re module
ANSI_RE = std_re.compile("\033\\[((?:\\d|;)*)([a-zA-Z])")


def fix_line_breaks(text):
    return (text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
            .replace("\u2029", "\n").replace("\u0085", "\n"))


def uncurl_quotes(text):
    text = std_re.sub("[\u201c-\u201f]", '"', text)
    return std_re.sub("[\u02bc\u2018-\u201b]", "'", text)


def fix_segment(text, unescape):
    while True:
        orig = text
        if unescape:
            text = unescape_html(text)
        text = fix_c1_controls(text)
        text = text.translate(LIGATURES)
        text = text.translate(WIDTH_MAP)
        text = uncurl_quotes(text)
        text = fix_line_breaks(text)
        text = ANSI_RE.sub("", text)
        text = text.translate(CONTROL_CHARS)
        text = unicodedata.normalize("NFC", text)
        if text == orig:
            return text


def fix_text(text):
    out = []
    pos = 0
    unescape = True
    while pos < len(text):
        brk = text.find("\n", pos) + 1
        if brk == 0:
            brk = len(text)
        if brk - pos > MAX_DECODE_LENGTH:
            brk = pos + MAX_DECODE_LENGTH
        seg = text[pos:brk]
        if "<" in seg:
            unescape = False
        out.append(fix_segment(seg, unescape))
        pos = brk
    return "".join(out)

# ------------------------------------------------------ OpenAI simple_tokenizer


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def get_pairs(word):
    return set(zip(word[:-1], word[1:]))


def clean(text):
    text = fix_text(text)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    text = regex.sub(r"\s+", " ", text)
    return text.strip().lower()


class Tokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
        merges = data.decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for m in merges:
            vocab.append("".join(m))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        return " ".join(word)

    def encode(self, text):
        ids = []
        cleaned = clean(text)
        for token in regex.findall(self.pat, cleaned):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return cleaned, ids


# ------------------------------------------------------- cases for the C test


def _lcg_letters(n, seed=12345):
    out = []
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append("abcdefghijklmnopqrstuvwxyz"[(x >> 16) % 26])
    return "".join(out)


C_CASES = [
    "&amp;amp; double",
    "&eacute;t&eacute; caf&eacute;",
    "smile &#x1F600; &#128512; ok",
    "&notin x &notin; y",
    "\u201ccurly\u201d \u2018quotes\u2019 don\u2019t \u02bcn",
    "\ufb01ne \ufb02ow \ufb03 \ufb04 \ufb05 \ufb06 \u0132ssel \u0149 \u01c5emal",
    "\uff26\uff35\uff2c\uff2c\u3000\uff57\uff49\uff44\uff54\uff48\uff01 \uff76\uff80\uff76\uff85 \uffe5",
    "\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[m",
    "tab\there\nnew\r\nline\rcr\u2028ls\u2029ps\x0bvt\x0cff",
    "\u0130stanbul \u0130\u0130",
    "\u039f\u0394\u039f\u03a3 \u03a3\u0391\u03a3 \u03a3 a\u03a3. \u038c\u03a3\u039f\u03a3",
    "it's THEY'RE we'VE i'M you'LL he'D 'S dog'\u017f",
    "<|startoftext|>x<|endoftext|> a<|ENDOFTEXT|>b !<|endoftext|>",
    "<b>&amp;</b> &amp;amp;",
    "line1 &amp;amp;\nline2 < &amp;amp;\nline3 &amp;amp;amp;",
    "&AMP; &EACUTE; &SZLIG; &NTILDE; &nTILDE;",
    "&#65;&#x42;&#X43; &#59; &#0; &#1; &#128; &#x85; &#xD800; &#1114112; &#12ab; &#xZZ;",
    b"\x85 \xc2\x85 \xc2\x91hi\xc2\x92 \xc2\x81",
    "e\u0301 cafe\u0301 \u0345 x\u0345y",
    "\ufeffbom \u200bzw \u206aold \ufffcobj \x00nul\x07bel",
    "1234567890 \u0663\u0664 \u00bd \u216b 2023",
    "emoji \U0001f600\U0001f44d\U0001f3fd \U0001f1eb\U0001f1f7 \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\u4e2d\u6587\u5b57\u7b26 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4",
    b"\xff\xfe bad \xe2\x82 \xed\xa0\x80 \xf0\x9f\x98 \xc0\xaf \xf4\x90\x80\x80 ok\xe2\x82\xac",
    "supercalifragilisticexpialidocious" * 40,
    _lcg_letters(2000),
    "\u00fcber-na\u00efve caf\u00e9 \U0001f600 \u2014 CAPS and  spaces",
    "  leading and trailing  \t\n ",
    "&" + "amp;" * 5 + "lt;",
    "\uff21\uff22\uff23\uff06\uff41\uff4d\uff50\uff1b\uff58",
    "x&#x1b;[31my &#x2028;z &Tab;t&NewLine;n",
]


def c_literal(b):
    out = []
    for c in b:
        if c in (0x22, 0x5C, 0x3F):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\%03o" % c)
    return '"' + "".join(out) + '"'


def print_c_cases(tok):
    print("/* Generated by tools/ref_tokenizer.py --c-cases: {text, clean, BPE ids}. */")
    print("static const struct tok_case tok_cases[] = {")
    for item in C_CASES:
        raw = item if isinstance(item, bytes) else item.encode("utf-8")
        cleaned, ids = tok.encode(raw.decode("utf-8", errors="replace"))
        cb = cleaned.encode("utf-8")
        print("    {%s, %d,\n     %s, %d,\n     (const int32_t[]){%s}, %d}," % (
            c_literal(raw), len(raw), c_literal(cb), len(cb),
            ", ".join(str(i) for i in ids) or "0", len(ids)))
    print("};")


def main():
    tok = Tokenizer(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--c-cases":
        print_c_cases(tok)
        return
    for item in json.load(sys.stdin):
        if isinstance(item, dict):
            item = bytes.fromhex(item["hex"]).decode("utf-8", errors="replace")
        cleaned, ids = tok.encode(item)
        print(json.dumps({"clean": cleaned, "ids": ids}, ensure_ascii=False))


if __name__ == "__main__":
    main()
