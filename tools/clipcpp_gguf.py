#!/usr/bin/env python3
"""clipcpp_gguf.py - writes the GGUF file clip.cpp's own tools would make from
a Hugging Face CLIP directory (config.json, model.safetensors in F32,
vocab.json), for testing that clipdex loads clip.cpp's published files:

  1. models/convert_hf_to_gguf.py of monatis/clip.cpp (read at commit
     3484ffc): its keys, its token list (tokenizer.ggml.tokens from
     vocab.json, no merges), its tensor names (text_model -> t, vision_model
     -> v, encoder.layers -> blk, "embeddings." and "_proj" dropped, ...;
     names holding "projection" kept), logit_scale and position_ids
     skipped, every tensor squeezed, 4-D tensors (the patch convolution) in
     F16, 2-D ".weight" tensors in F16 (the default f16 output), the rest
     F32;
  2. for --type q8_0|q4_0|q4_1, clip.cpp's quantize (clip_model_quantize):
     every 2-D tensor whose name matches ".*weight" (position and token
     embeddings included) converted from those F16 values with ggml's
     reference quantizers (quantize_row_*_reference), the rest unchanged.

Written from those descriptions in plain Python (no numpy, no gguf-py); no
code of clip.cpp. Slow (pure Python): meant for the small test models.
With --dequantized, the quantized tensors are written back as the F32
values ggml's dequantize_row_* gives for them (an independent reference:
clipdex must compute the same embeddings from both files).
Usage: clipcpp_gguf.py MODEL_DIR OUT.gguf [--type f16|q8_0|q4_0|q4_1] [--dequantized]
"""
import json
import math
import struct
import sys
from array import array

F32, F16, Q4_0, Q4_1, Q8_0 = 0, 1, 2, 3, 8
FILE_TYPE = {"f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7}
QTYPE = {"q4_0": Q4_0, "q4_1": Q4_1, "q8_0": Q8_0}
ALIGN = 32


class Tensor:
    """A float32 tensor: shape (PyTorch order) and values (array('f'))."""

    def __init__(self, shape, vals):
        self.shape, self.vals = [n for n in shape], vals

    def squeeze(self):
        return Tensor([n for n in self.shape if n != 1] or [1], self.vals)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or name.endswith("position_ids"):  # skipped by the converter
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{name}: {info['dtype']} (only F32 checkpoints)")
        a, b = info["data_offsets"]
        vals = array("f")
        vals.frombytes(raw[8 + n + a:8 + n + b])
        if sys.byteorder != "little":
            vals.byteswap()
        out[name] = Tensor(info["shape"], vals)
    return out


def tensor_name(name):
    if "projection" in name:
        return name
    for a, b in (("text_model", "t"), ("vision_model", "v"), ("encoder.layers", "blk"), ("embeddings.", ""),
                 ("_proj", ""), ("self_attn.", "attn_"), ("layer_norm", "ln"), ("layernorm", "ln"),
                 ("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up"), ("embedding", "embd"), ("final", "post"),
                 ("layrnorm", "ln")):
        name = name.replace(a, b)
    return name


def f32(x):
    """x rounded to float32, as C's float arithmetic stores it."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def half_bytes(x):
    return struct.pack("<e", x)  # round to nearest even, as numpy's and F16C's conversions


def to_half(vals):
    """The values rounded to F16 and back (what clip.cpp's quantize reads from an F16 file)."""
    return [struct.unpack("<e", half_bytes(v))[0] for v in vals]


def inv(d):
    return f32(1.0 / d) if d else 0.0


def roundf(x):
    return math.copysign(math.floor(abs(x) + 0.5), x)  # C's roundf: halves away from zero


def trunc8(x):
    return int(x)  # (int8_t) of a float: toward zero


def q8_0(vals):
    out = bytearray()
    for i in range(0, len(vals), 32):
        x = vals[i:i + 32]
        d = f32(max(abs(v) for v in x) / 127.0)
        idv = inv(d)
        out += half_bytes(d) + bytes(int(roundf(f32(v * idv))) & 0xFF for v in x)
    return bytes(out)


def nibbles(q):
    return bytes(q[j] | q[j + 16] << 4 for j in range(16))


def q4_0(vals):
    out = bytearray()
    for i in range(0, len(vals), 32):
        x = vals[i:i + 32]
        amax, mx = 0.0, 0.0
        for v in x:  # the first value of the largest |x|
            if amax < abs(v):
                amax, mx = abs(v), v
        d = f32(mx / -8.0)
        idv = inv(d)
        out += half_bytes(d) + nibbles([min(15, trunc8(f32(f32(v * idv) + 8.5))) for v in x])
    return bytes(out)


def q4_1(vals):
    out = bytearray()
    for i in range(0, len(vals), 32):
        x = vals[i:i + 32]
        lo, hi = min(x), max(x)
        d = f32((hi - lo) / 15.0)
        idv = inv(d)
        out += half_bytes(d) + half_bytes(lo)
        out += nibbles([min(15, trunc8(f32(f32(f32(v - lo) * idv) + 0.5))) for v in x])
    return bytes(out)


QUANT = {Q8_0: q8_0, Q4_0: q4_0, Q4_1: q4_1}
BLOCK_BYTES = {Q8_0: 34, Q4_0: 18, Q4_1: 20}


def dequantize(t, blob):
    """ggml's dequantize_row_* of a block stream, as float32 values."""
    out, bb = [], BLOCK_BYTES[t]
    for o in range(0, len(blob), bb):
        b = blob[o:o + bb]
        d = struct.unpack("<e", b[:2])[0]
        if t == Q8_0:
            out += [f32(q * d) for q in struct.unpack("<32b", b[2:])]
            continue
        m = struct.unpack("<e", b[2:4])[0] if t == Q4_1 else 0.0
        qs = b[4:] if t == Q4_1 else b[2:]
        q = [c & 15 for c in qs] + [c >> 4 for c in qs]
        out += [f32(v * d + m) if t == Q4_1 else f32((v - 8) * d) for v in q]
    return out


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def write(path, kvs, tensors):
    infos, data = b"", b""
    for name, t, shape, blob in tensors:
        ne = list(reversed(shape))
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", t, len(data))
        data += blob + b"\0" * (-len(blob) % ALIGN)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    with open(path, "wb") as f:
        f.write(head + b"\0" * (-len(head) % ALIGN) + data)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model_dir, out = sys.argv[1], sys.argv[2]
    qtype = sys.argv[sys.argv.index("--type") + 1] if "--type" in sys.argv else "f16"
    dequantized = "--dequantized" in sys.argv
    cfg = json.load(open(model_dir + "/config.json"))
    tc, vc = cfg["text_config"], cfg["vision_config"]
    tokens = list(json.load(open(model_dir + "/vocab.json", encoding="utf-8")))
    u32 = lambda k, v: kv(k, 4, struct.pack("<I", v))
    f32 = lambda k, v: kv(k, 6, struct.pack("<f", v))
    boolean = lambda k, v: kv(k, 7, struct.pack("<B", v))
    string = lambda k, v: kv(k, 8, s(v))
    floats = lambda k, vs: kv(k, 9, struct.pack("<IQ", 6, len(vs)) + b"".join(struct.pack("<f", v) for v in vs))
    strs = lambda k, vs: kv(k, 9, struct.pack("<IQ", 8, len(vs)) + b"".join(s(v) for v in vs))
    proj = cfg.get("projection_dim", 512)
    mean = [0.48145466, 0.4578275, 0.40821073]
    std = [0.26862954, 0.26130258, 0.27577711]
    try:
        pp = json.load(open(model_dir + "/preprocessor_config.json"))
        mean, std = pp.get("image_mean", mean), pp.get("image_std", std)
    except OSError:
        pass
    kvs = [string("general.architecture", "clip"), boolean("clip.has_text_encoder", 1),
           boolean("clip.has_vision_encoder", 1), u32("general.file_type", FILE_TYPE[qtype]),
           string("general.name", "clipcpp_gguf.py"), string("general.description", "two-tower CLIP model"),
           u32("clip.text.context_length", tc["max_position_embeddings"]),
           u32("clip.text.embedding_length", tc["hidden_size"]),
           u32("clip.text.feed_forward_length", tc["intermediate_size"]),
           u32("clip.text.projection_dim", tc.get("projection_dim", proj)),
           u32("clip.text.attention.head_count", tc["num_attention_heads"]),
           f32("clip.text.attention.layer_norm_epsilon", tc.get("layer_norm_eps", 1e-5)),
           u32("clip.text.block_count", tc["num_hidden_layers"]), strs("tokenizer.ggml.tokens", tokens),
           u32("clip.vision.image_size", vc["image_size"]), u32("clip.vision.patch_size", vc["patch_size"]),
           u32("clip.vision.embedding_length", vc["hidden_size"]),
           u32("clip.vision.feed_forward_length", vc["intermediate_size"]),
           u32("clip.vision.projection_dim", vc.get("projection_dim", proj)),
           u32("clip.vision.attention.head_count", vc["num_attention_heads"]),
           f32("clip.vision.attention.layer_norm_epsilon", vc.get("layer_norm_eps", 1e-5)),
           u32("clip.vision.block_count", vc["num_hidden_layers"]),
           floats("clip.vision.image_mean", mean), floats("clip.vision.image_std", std),
           boolean("clip.use_gelu", vc.get("hidden_act", "quick_gelu") == "gelu")]
    tensors = []
    for name, arr in read_safetensors(model_dir + "/model.safetensors").items():
        if name in ("logit_scale", "text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"):
            continue
        name, arr = tensor_name(name), arr.squeeze()
        nd = len(arr.shape)
        if nd == 4 or (nd == 2 and name.endswith(".weight")):
            if qtype in QTYPE and nd == 2:  # quantize: from the F16 values, 2-D weights only
                t, blob = QTYPE[qtype], QUANT[QTYPE[qtype]](to_half(arr.vals))
                if dequantized:
                    t, blob = F32, array("f", dequantize(t, blob)).tobytes()
            else:
                t, blob = F16, b"".join(half_bytes(v) for v in arr.vals)
        else:
            t, blob = F32, arr.vals.tobytes()
        tensors.append((name, t, arr.shape, blob))
    write(out, kvs, tensors)


if __name__ == "__main__":
    main()
