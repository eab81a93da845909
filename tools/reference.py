#!/usr/bin/python3
"""reference.py - an independent CLIP reference in PyTorch (float64 by default).

Written from the published architecture (OpenAI's CLIP model.py design), not
from Hugging Face transformers: pre-LN residual attention blocks, quick_gelu or
exact GELU, class token + positional embedding, ln_pre, ln_post on the class
token, projection; text: token + positional embedding, causal mask, ln_final,
pooling at the argmax token id (the end token), projection.

It reads safetensors itself (json header + numpy.frombuffer; F32, F16, BF16),
in both weight layouts:
  - Hugging Face: config.json + model.safetensors (vision_model.*, text_model.*)
  - OpenAI/OpenCLIP: open_clip_config.json + open_clip_model.safetensors
and implements OpenAI's simple_tokenizer (with ftfy's fixes for well-formed
text done by hand; ftfy is not needed) and clip.py's preprocessing
(Resize(n, BICUBIC) -> CenterCrop(n) -> RGB -> ToTensor -> Normalize) with
Pillow directly (torchvision's resize/crop arithmetic re-stated below).

Use as a module (tools/make_goldens.py) or as a program:
  reference.py check            prove the reference against OpenAI's outputs
                                (shared/reference/tiny-s1001, known-answers)
  reference.py embed MODEL_DIR [--image PATH]... [--text TEXT]...
"""
import argparse
import gzip
import html
import json
import math
import os
import struct
import sys
import unicodedata

import numpy as np
import regex
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("CLIPDEX_SHARED") or os.path.join(HERE, "..", "..", "shared")
if not os.path.isdir(SHARED):
    SHARED = "/work/shared"
SHARED = os.path.abspath(SHARED)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)

# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------

_DT = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
       "F64": np.float64, "I32": np.int32}


def load_safetensors(path):
    """Returns ({name: numpy array}, {name: dtype string}). BF16 becomes float32."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data, dtype=_DT[info["dtype"]], count=(b - a) // np.dtype(_DT[info["dtype"]]).itemsize,
                            offset=base + a)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.reshape(info["shape"])
        dtypes[name] = info["dtype"]
    return out, dtypes


# ---------------------------------------------------------------------------
# Model loading: both layouts into OpenAI's state-dict names
# ---------------------------------------------------------------------------

class Model:
    """Weights (torch tensors, OpenAI names) and hyper-parameters."""

    def __init__(self, w, cfg, dtype=torch.float64):
        self.w = {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(dtype) for k, v in w.items()}
        self.cfg = cfg
        self.dtype = dtype

    def __getitem__(self, k):
        return self.w[k]


def _hf_to_openai(t, cfg):
    w = {}
    ve, te = "vision_model.embeddings.", "text_model.embeddings."
    w["visual.conv1.weight"] = t[ve + "patch_embedding.weight"]
    w["visual.class_embedding"] = t[ve + "class_embedding"]
    w["visual.positional_embedding"] = t[ve + "position_embedding.weight"]
    w["visual.ln_pre.weight"] = t["vision_model.pre_layrnorm.weight"]
    w["visual.ln_pre.bias"] = t["vision_model.pre_layrnorm.bias"]
    w["visual.ln_post.weight"] = t["vision_model.post_layernorm.weight"]
    w["visual.ln_post.bias"] = t["vision_model.post_layernorm.bias"]
    w["visual.proj"] = t["visual_projection.weight"].T
    w["token_embedding.weight"] = t[te + "token_embedding.weight"]
    w["positional_embedding"] = t[te + "position_embedding.weight"]
    w["ln_final.weight"] = t["text_model.final_layer_norm.weight"]
    w["ln_final.bias"] = t["text_model.final_layer_norm.bias"]
    w["text_projection"] = t["text_projection.weight"].T
    w["logit_scale"] = t["logit_scale"]
    for tower, dst, n in (("vision", "visual.transformer", cfg["v_layers"]),
                          ("text", "transformer", cfg["t_layers"])):
        for i in range(n):
            s = "%s_model.encoder.layers.%d." % (tower, i)
            d = "%s.resblocks.%d." % (dst, i)
            w[d + "attn.in_proj_weight"] = np.concatenate(
                [t[s + "self_attn.%s_proj.weight" % c] for c in "qkv"], 0)
            w[d + "attn.in_proj_bias"] = np.concatenate(
                [t[s + "self_attn.%s_proj.bias" % c] for c in "qkv"], 0)
            w[d + "attn.out_proj.weight"] = t[s + "self_attn.out_proj.weight"]
            w[d + "attn.out_proj.bias"] = t[s + "self_attn.out_proj.bias"]
            for a, b in (("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                         ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                w[d + a + ".weight"] = t[s + b + ".weight"]
                w[d + a + ".bias"] = t[s + b + ".bias"]
    return w


def load_model(model_dir, dtype=torch.float64):
    """Loads a model directory in either layout (HF preferred when both exist,
    unless layout='openclip' is asked through load_model_layout)."""
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
        return load_model_layout(model_dir, "hf", dtype)
    return load_model_layout(model_dir, "openclip", dtype)


def load_model_layout(model_dir, layout, dtype=torch.float64):
    if layout == "hf":
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        vc, tc = c["vision_config"], c["text_config"]
        act = vc.get("hidden_act", "quick_gelu")
        cfg = dict(image_size=vc["image_size"], patch=vc["patch_size"], v_width=vc["hidden_size"],
                   v_layers=vc["num_hidden_layers"], v_heads=vc["num_attention_heads"],
                   t_width=tc["hidden_size"], t_layers=tc["num_hidden_layers"],
                   t_heads=tc["num_attention_heads"], ctx=tc.get("max_position_embeddings", 77),
                   vocab=tc["vocab_size"], embed=c["projection_dim"],
                   quick_gelu=(act == "quick_gelu"), eps=vc.get("layer_norm_eps", 1e-5))
        if tc.get("hidden_act", act) != act:
            raise ValueError("towers with different activations are not supported")
        t, dts = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        w = _hf_to_openai(t, cfg)
    else:
        with open(os.path.join(model_dir, "open_clip_config.json")) as f:
            c = json.load(f)["model_cfg"]
        vc, tc = c["vision_cfg"], c["text_cfg"]
        cfg = dict(image_size=vc["image_size"], patch=vc["patch_size"], v_width=vc["width"],
                   v_layers=vc["layers"], v_heads=vc["width"] // vc.get("head_width", 64),
                   t_width=tc["width"], t_layers=tc["layers"], t_heads=tc["heads"],
                   ctx=tc.get("context_length", 77), vocab=tc.get("vocab_size", 49408),
                   embed=c["embed_dim"], quick_gelu=bool(c.get("quick_gelu", False)), eps=1e-5)
        t, dts = load_safetensors(os.path.join(model_dir, "open_clip_model.safetensors"))
        w = {k: v for k, v in t.items() if not k.endswith("position_ids")}
    m = Model(w, cfg, dtype)
    m.file_dtype = sorted(set(v for k, v in dts.items() if not k.endswith("position_ids")))
    return m


# ---------------------------------------------------------------------------
# Forward pass (OpenAI model.py design)
# ---------------------------------------------------------------------------

def layer_norm(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def activation(x, quick):
    if quick:
        return x * torch.sigmoid(1.702 * x)
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def attention(x, w, prefix, heads, causal):
    """Multi-head self-attention. x: [B, L, D]."""
    B, L, D = x.shape
    hd = D // heads
    qkv = x @ w[prefix + "in_proj_weight"].T + w[prefix + "in_proj_bias"]  # [B, L, 3D]
    q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
    q = q.reshape(B, L, heads, hd).transpose(1, 2)  # [B, H, L, hd]
    k = k.reshape(B, L, heads, hd).transpose(1, 2)
    v = v.reshape(B, L, heads, hd).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)  # [B, H, L, L]
    if causal:
        mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
        s = s.masked_fill(mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = (p @ v).transpose(1, 2).reshape(B, L, D)
    return o @ w[prefix + "out_proj.weight"].T + w[prefix + "out_proj.bias"]


def resblock(x, w, prefix, heads, quick, causal=False, eps=1e-5):
    """x + attn(ln_1(x)); x + mlp(ln_2(x)). x: [B, L, D]."""
    h = layer_norm(x, w[prefix + "ln_1.weight"], w[prefix + "ln_1.bias"], eps)
    x = x + attention(h, w, prefix + "attn.", heads, causal)
    h = layer_norm(x, w[prefix + "ln_2.weight"], w[prefix + "ln_2.bias"], eps)
    h = h @ w[prefix + "mlp.c_fc.weight"].T + w[prefix + "mlp.c_fc.bias"]
    h = activation(h, quick)
    h = h @ w[prefix + "mlp.c_proj.weight"].T + w[prefix + "mlp.c_proj.bias"]
    return x + h


def vit(images, w, prefix, patch, layers, heads, quick, eps=1e-5):
    """images: [B, 3, n, n] -> [B, embed] (or [B, width] without proj)."""
    B = images.shape[0]
    conv = w[prefix + "conv1.weight"]
    W = conv.shape[0]
    x = torch.nn.functional.conv2d(images, conv, stride=patch)  # [B, W, g, g]
    x = x.reshape(B, W, -1).transpose(1, 2)  # [B, g*g, W]
    cls = w[prefix + "class_embedding"].reshape(1, 1, W).expand(B, 1, W)
    x = torch.cat([cls, x], dim=1) + w[prefix + "positional_embedding"]
    x = layer_norm(x, w[prefix + "ln_pre.weight"], w[prefix + "ln_pre.bias"], eps)
    for i in range(layers):
        x = resblock(x, w, prefix + "transformer.resblocks.%d." % i, heads, quick, False, eps)
    x = layer_norm(x[:, 0, :], w[prefix + "ln_post.weight"], w[prefix + "ln_post.bias"], eps)
    if (prefix + "proj") in w:
        x = x @ w[prefix + "proj"]
    return x


def encode_image(m, images):
    """images: [B, 3, n, n] float tensor (preprocessed) -> raw embeddings [B, E]."""
    c = m.cfg
    return vit(images.to(m.dtype), m.w, "visual.", c["patch"], c["v_layers"], c["v_heads"],
               c["quick_gelu"], c["eps"])


def encode_text(m, ids):
    """ids: [B, ctx] int64 -> raw embeddings [B, E]."""
    c, w = m.cfg, m.w
    x = w["token_embedding.weight"][ids] + w["positional_embedding"]
    for i in range(c["t_layers"]):
        x = resblock(x, w, "transformer.resblocks.%d." % i, c["t_heads"], c["quick_gelu"], True, c["eps"])
    x = layer_norm(x, w["ln_final.weight"], w["ln_final.bias"], c["eps"])
    x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
    return x @ w["text_projection"]


def normalize(x):
    return x / x.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------
# Tokenizer (OpenAI simple_tokenizer algorithm)
# ---------------------------------------------------------------------------

def bytes_to_unicode():
    """Maps every byte to a printable unicode character (GPT-2's byte-level trick):
    printable latin-1 bytes map to themselves, the rest to 256 + k in order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    mapping = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


# ftfy's fixes for well-formed text, by hand.
_LIGATURES = {
    "\u0132": "IJ", "\u0133": "ij", "\u0149": "\u02bcn", "\u01c4": "D\u017d", "\u01c5": "D\u017e",
    "\u01c6": "d\u017e", "\u01c7": "LJ", "\u01c8": "Lj", "\u01c9": "lj", "\u01ca": "NJ",
    "\u01cb": "Nj", "\u01cc": "nj", "\u01f1": "DZ", "\u01f2": "Dz", "\u01f3": "dz",
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
    "\ufb05": "\u017ft", "\ufb06": "st",
}


def _width_map():
    m = {0x3000: " "}
    for i in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(i))
        if alt != chr(i):
            m[i] = alt
    return m


_WIDTH = _width_map()
_CONTROL = {i: None for i in list(range(0x00, 0x09)) + [0x0B] + list(range(0x0E, 0x20)) + [0x7F] +
            list(range(0x206A, 0x2070)) + [0xFEFF] + list(range(0xFFF9, 0xFFFD))}
_TERMINAL_ESC = regex.compile(r"\x1b\[((?:\d|;)*)([a-zA-Z])")
_SINGLE_Q = regex.compile("[\u02bc\u2018-\u201b]")
_DOUBLE_Q = regex.compile("[\u201c-\u201f]")
_C1 = regex.compile("[\x80-\x9f]")


def _c1_to_cp1252(mt):
    b = bytes([ord(mt.group(0))])
    try:
        return b.decode("cp1252")
    except UnicodeDecodeError:  # the 5 bytes cp1252 leaves undefined stay as they are
        return mt.group(0)


def ftfy_well_formed(text):
    """ftfy.fix_text's effect on well-formed text (no mojibake repair)."""
    text = _C1.sub(_c1_to_cp1252, text)
    text = _TERMINAL_ESC.sub("", text)
    text = text.translate(_LIGATURES_T)
    text = text.translate(_WIDTH)
    text = _SINGLE_Q.sub("'", text)
    text = _DOUBLE_Q.sub('"', text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n") \
        .replace("\u2029", "\n").replace("\u0085", "\n")
    text = text.translate(_CONTROL)
    return unicodedata.normalize("NFC", text)


_LIGATURES_T = {ord(k): v for k, v in _LIGATURES.items()}


class Tokenizer:
    PATTERN = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
        regex.IGNORECASE)

    def __init__(self, path=None):
        path = path or os.path.join(SHARED, "data", "vocab", "bpe_simple_vocab_16e6.txt.gz")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        self.byte_enc = bytes_to_unicode()
        base = list(self.byte_enc.values())
        vocab = base + [v + "</w>" for v in base] + ["".join(mg) for mg in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.ranks = {mg: i for i, mg in enumerate(merges)}
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.sot = self.encoder["<|startoftext|>"]
        self.eot = self.encoder["<|endoftext|>"]

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            best, best_rank = None, None
            for pair in zip(word, word[1:]):
                r = self.ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        out = " ".join(word)
        self.cache[token] = out
        return out

    @staticmethod
    def clean(text):
        text = ftfy_well_formed(text)
        text = html.unescape(html.unescape(text)).strip()
        text = regex.sub(r"\s+", " ", text).strip()
        return text.lower()

    def encode(self, text):
        ids = []
        for tok in self.PATTERN.findall(self.clean(text)):
            u = "".join(self.byte_enc[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[p] for p in self.bpe(u).split(" "))
        return ids

    def tokenize(self, text, ctx=77):
        """-> (ids padded to ctx, n_tokens through the end token, truncated)."""
        toks = [self.sot] + self.encode(text) + [self.eot]
        truncated = len(toks) > ctx
        if truncated:
            toks = toks[:ctx]
            toks[-1] = self.eot
        n = len(toks)
        return toks + [0] * (ctx - n), n, truncated


# ---------------------------------------------------------------------------
# Preprocessing (clip.py _transform, torchvision arithmetic re-stated)
# ---------------------------------------------------------------------------

def resized_size(w, h, n):
    """torchvision Resize(int): shorter side -> n, longer int(n * long / short)."""
    if w <= h:
        return n, int(n * h / w)
    return int(n * w / h), n


def crop_rgb(img, n):
    """-> (PIL RGB image n x n, (rw, rh), (left, top)). Pillow resizes in the
    image's own mode (RGBA premultiplied, P and 1 nearest-neighbour)."""
    rw, rh = resized_size(img.size[0], img.size[1], n)
    if (rw, rh) != img.size:
        img = img.resize((rw, rh), Image.BICUBIC)
    left = int(round((rw - n) / 2.0))
    top = int(round((rh - n) / 2.0))
    img = img.crop((left, top, left + n, top + n))
    return img.convert("RGB"), (rw, rh), (left, top)


def normalize_crop(rgb):
    """ToTensor + Normalize in float32, as torchvision does: [3, n, n]."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    x = x.to(torch.float32).div(255)
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return x.sub(mean).div(std)


def preprocess(path, n):
    img = Image.open(path)
    mode, size = img.mode, img.size
    rgb, rs, off = crop_rgb(img, n)
    return normalize_crop(rgb), dict(mode=mode, size=list(size), resized_size=list(rs),
                                     crop_left_top=list(off), crop=rgb)


# ---------------------------------------------------------------------------
# Proof against OpenAI's own outputs
# ---------------------------------------------------------------------------

def _maxerr(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def check(verbose=True):
    """Compares with shared/reference/tiny-s1001 and known-answers; returns a dict of errors."""
    import hashlib
    res = {}
    ref = os.path.join(SHARED, "reference", "tiny-s1001")
    g = json.load(open(os.path.join(ref, "golden.json")))
    z = np.load(os.path.join(ref, "golden_inputs.npz"))
    tok = Tokenizer()

    # tokens
    tok_ok = 0
    for i, t in enumerate(g["texts"]):
        ids, n, tr = tok.tokenize(t["text"])
        same = ids[:n] == t["tokens"] and n == t["n_tokens"] and tr == t["truncated"] and \
            list(z["tokens"][i]) == ids
        tok_ok += same
        if not same and verbose:
            print("token mismatch:", repr(t["text"]), ids[:n], t["tokens"])
    res["tokens_exact"] = "%d/%d" % (tok_ok, len(g["texts"]))

    # preprocessing
    sha_ok, pre_err = 0, 0.0
    imgs = []
    for i, im in enumerate(g["images"]):
        x, info = preprocess(os.path.join(SHARED, im["path"]), 224)
        imgs.append(x)
        sha = hashlib.sha256(x.numpy().astype("<f4").tobytes()).hexdigest()
        sha_ok += sha == im["preprocessed_sha256"]
        pre_err = max(pre_err, _maxerr(x.numpy(), z["images"][i]))
        if info["resized_size"] != im["resized_size"] or info["crop_left_top"] != im["crop_left_top"] \
                or info["mode"] != im["mode"]:
            print("geometry mismatch:", im["path"], info, im["resized_size"], im["crop_left_top"])
    res["preprocessed_sha256_exact"] = "%d/%d" % (sha_ok, len(g["images"]))
    res["preprocessed_max_abs_err"] = pre_err

    # embeddings from OpenAI's exact inputs, float64 and float32
    for dt, name in ((torch.float64, "f64"), (torch.float32, "f32")):
        m = load_model(ref, dt)
        with torch.no_grad():
            ie = encode_image(m, torch.from_numpy(z["images"]))
            te = encode_text(m, torch.from_numpy(z["tokens"]))
        res["image_emb_max_abs_err_" + name] = _maxerr(ie.numpy(), z["image_embeddings"])
        res["text_emb_max_abs_err_" + name] = _maxerr(te.numpy(), z["text_embeddings"])
        ien = normalize(ie.double()).numpy()
        ten = normalize(te.double()).numpy()
        res["image_norm_max_abs_err_" + name] = _maxerr(ien, [im["embedding_normalized"] for im in g["images"]])
        res["text_norm_max_abs_err_" + name] = _maxerr(ten, [t["embedding_normalized"] for t in g["texts"]])
        scale = math.exp(float(m["logit_scale"]))
        logits = scale * ien @ ten.T
        res["logits_max_abs_err_" + name] = _maxerr(logits, g["logits_per_image"])
        if name == "f64":
            # the whole chain from the image files and texts
            m64 = m
    with torch.no_grad():
        ie = encode_image(m64, torch.stack(imgs))
        ids = torch.tensor([tok.tokenize(t["text"])[0] for t in g["texts"]])
        te = encode_text(m64, ids)
    res["end_to_end_image_emb_max_abs_err_f64"] = _maxerr(ie.numpy(), [im["embedding"] for im in g["images"]])
    res["end_to_end_text_emb_max_abs_err_f64"] = _maxerr(te.numpy(), [t["embedding"] for t in g["texts"]])

    # known answers (OpenAI's code via the modelzoo npm package)
    kd = json.load(open(os.path.join(SHARED, "data", "known-answers", "clip_data.json")))
    for i, c in enumerate(kd["cases"]):
        ids, n, tr = tok.tokenize(c)
        res.setdefault("known_tokens_exact", 0)
        res["known_tokens_exact"] += ids == kd["tokenizer"][i][0]
    res["known_tokens_exact"] = "%d/%d" % (res["known_tokens_exact"], len(kd["cases"]))
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in kd["attn_weights"].items()}
    # [1, 4, 8] holds one sequence of 4 tokens (batch first): reading it as
    # OpenAI's [L, N, D] (4 sequences of 1 token) does not reproduce the output.
    x = torch.tensor(kd["attn_input"], dtype=torch.float64)
    y = resblock(x, w, "", kd["attn_config"]["n_head"], True)
    res["known_resblock_max_abs_err"] = _maxerr(y.numpy(), kd["attn_output"])
    vc = kd["vit_config"]
    w = {k: torch.tensor(v, dtype=torch.float64) for k, v in kd["vit_weights"].items()}
    x = torch.tensor(kd["vit_input"], dtype=torch.float64)
    if list(x.shape) != kd["vit_input_shape"]:
        x = x.permute(0, 3, 1, 2)  # stored NHWC
    y = vit(x, w, "", vc["patch_size"], vc["layers"], vc["heads"], True)
    res["known_vit_max_abs_err"] = _maxerr(y.numpy(), kd["vit_output"])
    src = Image.fromarray(np.array(kd["transform_input"], dtype=np.uint8))
    rgb, _, _ = crop_rgb(src, kd["transform_resolution"])
    xt = normalize_crop(rgb).permute(1, 2, 0).numpy()
    res["known_transform_max_abs_err"] = _maxerr(xt, kd["transform_output"])
    if verbose:
        for k, v in res.items():
            print("%-40s %s" % (k, v if isinstance(v, str) else "%.3g" % v))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    e = sub.add_parser("embed")
    e.add_argument("model_dir")
    e.add_argument("--layout", choices=["hf", "openclip"])
    e.add_argument("--image", action="append", default=[])
    e.add_argument("--text", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "check":
        check()
        return
    m = load_model_layout(a.model_dir, a.layout) if a.layout else load_model(a.model_dir)
    tok = Tokenizer()
    with torch.no_grad():
        for p in a.image:
            x, _ = preprocess(p, m.cfg["image_size"])
            v = normalize(encode_image(m, x[None]))[0]
            print(json.dumps({"image": p, "embedding": [float("%.9g" % f) for f in v]}))
        for t in a.text:
            ids, n, tr = tok.tokenize(t, m.cfg["ctx"])
            v = normalize(encode_text(m, torch.tensor([ids])))[0]
            print(json.dumps({"text": t, "tokens": ids[:n], "embedding": [float("%.9g" % f) for f in v]}))


if __name__ == "__main__":
    main()
