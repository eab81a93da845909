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


def main():
    tok = Tokenizer(sys.argv[1])
    for item in json.load(sys.stdin):
        if isinstance(item, dict):
            item = bytes.fromhex(item["hex"]).decode("utf-8", errors="replace")
        cleaned, ids = tok.encode(item)
        print(json.dumps({"clean": cleaned, "ids": ids}, ensure_ascii=False))


if __name__ == "__main__":
    main()
