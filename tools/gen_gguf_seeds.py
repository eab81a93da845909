#!/usr/bin/env python3
"""gen_gguf_seeds.py - writes the seed corpus of fuzz/fuzz_gguf.c into
fuzz/corpus/gguf/: a micro two-tower CLIP in clip.cpp's GGUF naming (16 px,
patch 8, widths 32, one block per tower, vocabulary 8, context 4; linear
weights Q8_0 / Q4_0 / F16, the rest F32) and a bare file with one key and
one tensor. Deterministic; run from the repository root."""
import random
import struct

ALIGN = 32
F32, F16, Q4_0, Q8_0 = 0, 1, 2, 8


def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload


def u32(key, v):
    return kv(key, 4, struct.pack("<I", v))


def f32(key, v):
    return kv(key, 6, struct.pack("<f", v))


def boolean(key, v):
    return kv(key, 7, struct.pack("<B", v))


def string(key, v):
    return kv(key, 8, s(v))


def f32s(key, vs):
    return kv(key, 9, struct.pack("<IQ", 6, len(vs)) + b"".join(struct.pack("<f", v) for v in vs))


def half(x):
    return struct.pack("<e", x)


def encode(t, vals):
    if t == F32:
        return b"".join(struct.pack("<f", v) for v in vals)
    if t == F16:
        return b"".join(half(v) for v in vals)
    out = b""
    for i in range(0, len(vals), 32):
        blk = vals[i:i + 32]
        amax = max(abs(v) for v in blk)
        if t == Q8_0:
            d = amax / 127
            out += half(d) + bytes((round(v / d) if d else 0) & 0xFF for v in blk)
        else:
            mx = max(blk, key=abs)
            d = mx / -8
            q = [min(15, int(v / d + 8.5)) if d else 8 for v in blk]
            out += half(d) + bytes(q[j] | q[j + 16] << 4 for j in range(16))
    return out


def gguf(kvs, tensors):
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    data, infos = b"", b""
    for name, t, shape, vals in tensors:
        ne = list(reversed(shape))
        infos += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", t, len(data))
        data += encode(t, vals)
        data += b"\0" * (-len(data) % ALIGN)
    head += infos
    head += b"\0" * (-len(head) % ALIGN)
    return head + data


def micro(lin_type):
    rnd = random.Random(7)
    W, M, V, C, E, P, S = 32, 64, 8, 4, 32, 8, 16

    def r(n, sc=0.2):
        return [rnd.uniform(-sc, sc) for _ in range(n)]

    ts = [("t.token_embd.weight", lin_type, [V, W], r(V * W)),
          ("t.position_embd.weight", F32, [C, W], r(C * W))]
    for tw in ("t", "v"):
        p = f"{tw}.blk.0."
        for n in ("attn_k", "attn_v", "attn_q", "attn_out"):
            ts += [(p + n + ".weight", lin_type, [W, W], r(W * W)), (p + n + ".bias", F32, [W], r(W))]
        ts += [(p + "ln1.weight", F32, [W], [1.0] * W), (p + "ln1.bias", F32, [W], r(W)),
               (p + "ffn_down.weight", lin_type, [M, W], r(M * W)), (p + "ffn_down.bias", F32, [M], r(M)),
               (p + "ffn_up.weight", lin_type, [W, M], r(W * M)), (p + "ffn_up.bias", F32, [W], r(W)),
               (p + "ln2.weight", F32, [W], [1.0] * W), (p + "ln2.bias", F32, [W], r(W))]
        if tw == "t":
            ts += [("t.post_ln.weight", F32, [W], [1.0] * W), ("t.post_ln.bias", F32, [W], r(W)),
                   ("v.class_embd", F32, [W], r(W)),
                   ("v.patch_embd.weight", F16, [W, 3, P, P], r(W * 3 * P * P)),
                   ("v.position_embd.weight", F32, [(S // P) ** 2 + 1, W], r(5 * W)),
                   ("v.pre_ln.weight", F32, [W], [1.0] * W), ("v.pre_ln.bias", F32, [W], r(W))]
    ts += [("v.post_ln.weight", F32, [W], [1.0] * W), ("v.post_ln.bias", F32, [W], r(W)),
           ("visual_projection.weight", lin_type, [E, W], r(E * W)),
           ("text_projection.weight", lin_type, [E, W], r(E * W)),
           ("logit_scale", F32, [1], [4.6051702])]
    kvs = [string("general.architecture", "clip"), u32("general.alignment", ALIGN),
           boolean("clip.has_text_encoder", 1), boolean("clip.has_vision_encoder", 1),
           u32("clip.text.context_length", C), u32("clip.text.embedding_length", W),
           u32("clip.text.feed_forward_length", M), u32("clip.text.projection_dim", E),
           u32("clip.text.attention.head_count", 1), f32("clip.text.attention.layer_norm_epsilon", 1e-5),
           u32("clip.text.block_count", 1), u32("clip.vision.image_size", S), u32("clip.vision.patch_size", P),
           u32("clip.vision.embedding_length", W), u32("clip.vision.feed_forward_length", M),
           u32("clip.vision.projection_dim", E), u32("clip.vision.attention.head_count", 1),
           f32("clip.vision.attention.layer_norm_epsilon", 1e-5), u32("clip.vision.block_count", 1),
           f32s("clip.vision.image_mean", [0.48, 0.46, 0.41]), f32s("clip.vision.image_std", [0.27, 0.26, 0.28]),
           boolean("clip.use_gelu", 0)]
    return gguf(kvs, ts)


if __name__ == "__main__":
    for name, t in (("micro-q8_0.gguf", Q8_0), ("micro-q4_0.gguf", Q4_0), ("micro-f16.gguf", F16)):
        with open("fuzz/corpus/gguf/" + name, "wb") as f:
            f.write(micro(t))
    with open("fuzz/corpus/gguf/bare.gguf", "wb") as f:
        f.write(gguf([string("general.architecture", "clip")], [("x", F32, [2, 3], [0.5] * 6)]))
