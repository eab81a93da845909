#!/usr/bin/python3
"""export_onnx.py - exports a clipdex model directory's two towers to ONNX.

The peers of `make bench` (bench/peers/) run the same model as clipdex: this
script builds plain PyTorch modules (OpenAI model.py design, the same maths as
tools/reference.py) from the weights of a Hugging Face or OpenCLIP directory
written by build/tools/genmodel (or a real checkpoint), checks them against
tools/reference.py, and exports them with torch.onnx.export (TorchScript
exporter of Debian's torch 1.13, opset 17 so LayerNorm is one
LayerNormalization node). torch.onnx.export needs no `onnx` Python package: the
protobuf is written and checked by torch's own C++ code.

  export_onnx.py MODEL_DIR OUT_DIR [--int8 [--int8-bits 7|8]] [--no-check]

writes
  OUT_DIR/image.onnx         pixels float32 [B, 3, S, S] -> embeds float32 [B, E] (raw, not normalized)
  OUT_DIR/text.onnx          ids int64 [B, L] -> embeds [B, E]; L is dynamic: feed only the
                             positions through the end token (pooling is at argmax(ids))
  OUT_DIR/image-int8.onnx    with --int8: the same graphs with every weight matrix of the
  OUT_DIR/text-int8.onnx     transformer blocks and the projection quantized to int8 per output
                             column (7-bit range by default, 8-bit with --int8-bits 8: see
                             INT8_WMAX); activations quantized per tensor at run time to uint8
                             (ONNX Runtime's `quantize_dynamic` recipe, written directly:
                             DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul -> Add, which
                             ONNX Runtime fuses into DynamicQuantizeMatMul)
  OUT_DIR/sample.bin         sample inputs and the float64 reference's outputs, for
  OUT_DIR/sample.json        bench/peers/ort_worker.js --check (see the JSON for the layout)

The modules are also the PyTorch peer (bench/peers/torch_worker.py imports
`load_towers`).
"""
import argparse
import json
import math
import mmap
import os
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference  # noqa: E402  (tools/reference.py: safetensors reader, layouts, float64 reference)

OPSET = 17
# int8 weights use 7 bits ([-63, 63]) by default, ONNX Runtime's `reduce_range`: on
# x86 CPUs without VNNI its u8 x s8 kernels add pairs of products in int16
# (vpmaddubsw), which saturates with full-range weights and wrecks the result.
# With VNNI (vpdpbusd sums into int32) --int8-bits 8 uses [-127, 127]: as fast,
# more accurate (bench/run.sh picks it on VNNI CPUs; docs/benchmarks.md).
INT8_WMAX = 63.0


# ---------------------------------------------------------------------------
# Weights: both layouts into OpenAI names, float32 torch tensors
# ---------------------------------------------------------------------------

def read_safetensors(path):
    """{name: numpy array} viewing a read-only mmap of the file (F32 without a copy,
    like clipdex; F16/BF16 converted to float32). int64 position_ids are skipped."""
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (hlen,) = struct.unpack("<Q", mm[:8])
    header = json.loads(mm[8:8 + hlen].decode("utf-8"))
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or name.endswith("position_ids"):
            continue
        a, b = info["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}[info["dtype"]]
        arr = np.frombuffer(mm, dtype=dt, count=(b - a) // np.dtype(dt).itemsize, offset=8 + hlen + a)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F16":
            arr = arr.astype(np.float32)
        out[name] = arr.reshape(info["shape"])
    return out


def load_weights(model_dir):
    """Returns ({OpenAI name: float32 tensor}, cfg). Same layouts and name mapping as
    tools/reference.py, but float32 straight from a mmap instead of float64 copies."""
    if os.path.exists(os.path.join(model_dir, "model.safetensors")):
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
        w = reference._hf_to_openai(read_safetensors(os.path.join(model_dir, "model.safetensors")), cfg)
    else:
        with open(os.path.join(model_dir, "open_clip_config.json")) as f:
            c = json.load(f)["model_cfg"]
        vc, tc = c["vision_cfg"], c["text_cfg"]
        cfg = dict(image_size=vc["image_size"], patch=vc["patch_size"], v_width=vc["width"],
                   v_layers=vc["layers"], v_heads=vc["width"] // vc.get("head_width", 64),
                   t_width=tc["width"], t_layers=tc["layers"], t_heads=tc["heads"],
                   ctx=tc.get("context_length", 77), vocab=tc.get("vocab_size", 49408),
                   embed=c["embed_dim"], quick_gelu=bool(c.get("quick_gelu", False)), eps=1e-5)
        w = read_safetensors(os.path.join(model_dir, "open_clip_model.safetensors"))
    with warnings.catch_warnings():  # tensors over the read-only mapping: never written
        warnings.simplefilter("ignore", UserWarning)
        return {k: torch.from_numpy(v) for k, v in w.items()}, cfg


# ---------------------------------------------------------------------------
# Modules (OpenAI model.py design; plain ops so the export is a clean graph)
# ---------------------------------------------------------------------------

class DynQuantLinearFn(torch.autograd.Function):
    """y = x @ W + b with W int8 per output column (scale [N], zero point 0) and x
    quantized per tensor to uint8 at run time, exactly as ONNX's
    DynamicQuantizeLinear + MatMulInteger compute it. The forward is the same
    arithmetic in PyTorch (for checking); `symbolic` emits the ONNX ops."""

    @staticmethod
    def forward(ctx, x, wq, wscale, bias):
        xmin = torch.clamp(x.min(), max=0.0)
        xmax = torch.clamp(x.max(), min=0.0)
        scale = (xmax - xmin) / 255.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        zp = torch.clamp(torch.round(-xmin / scale), 0, 255)  # round half to even, like ONNX
        xq = torch.clamp(torch.round(x / scale) + zp, 0, 255)
        acc = (xq - zp).double() @ wq.double()  # exact integer sums
        return (acc.float() * (scale * wscale)) + bias

    @staticmethod
    def symbolic(g, x, wq, wscale, bias):
        xq, xs, xzp = g.op("DynamicQuantizeLinear", x, outputs=3)
        wzp = g.op("Constant", value_t=torch.zeros(wq.type().sizes()[-1], dtype=torch.int8))
        acc = g.op("MatMulInteger", xq, wq, xzp, wzp)
        y = g.op("Cast", acc, to_i=1)  # TensorProto.FLOAT
        s = g.op("Mul", xs, wscale)
        return g.op("Add", g.op("Mul", y, s), bias)


class Linear(torch.nn.Module):
    """x @ W^T + b (W [out, in] as in PyTorch); int8 mode stores W^T quantized."""

    def __init__(self, weight, bias, int8=False):
        super().__init__()
        self.int8 = int8
        if int8:
            wt = weight.t().contiguous()  # [in, out]
            scale = wt.abs().amax(0).clamp(min=1e-12) / INT8_WMAX
            self.register_buffer("wq", torch.clamp(torch.round(wt / scale), -INT8_WMAX, INT8_WMAX).to(torch.int8))
            self.register_buffer("wscale", scale.float())
            self.register_buffer("bias", bias if bias is not None else torch.zeros(weight.shape[0]))
        else:
            self.weight = torch.nn.Parameter(weight, requires_grad=False)
            self.bias = torch.nn.Parameter(bias, requires_grad=False) if bias is not None else None

    def forward(self, x):
        if self.int8:
            return DynQuantLinearFn.apply(x, self.wq, self.wscale, self.bias)
        return F.linear(x, self.weight, self.bias)


def _p(t):
    return torch.nn.Parameter(t, requires_grad=False)


class LayerNorm(torch.nn.Module):
    def __init__(self, w, b, eps):
        super().__init__()
        self.weight, self.bias, self.eps = _p(w), _p(b), eps

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class Block(torch.nn.Module):
    """x + attn(ln_1(x)); x + mlp(ln_2(x))."""

    def __init__(self, w, p, heads, quick, eps, int8):
        super().__init__()
        self.heads, self.quick = heads, quick
        self.ln_1 = LayerNorm(w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        self.ln_2 = LayerNorm(w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        self.qkv = Linear(w[p + "attn.in_proj_weight"], w[p + "attn.in_proj_bias"], int8)
        self.out = Linear(w[p + "attn.out_proj.weight"], w[p + "attn.out_proj.bias"], int8)
        self.fc = Linear(w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"], int8)
        self.proj = Linear(w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"], int8)

    def forward(self, x, mask=None):
        B, L, D = x.shape
        hd = D // self.heads
        qkv = self.qkv(self.ln_1(x)).reshape(B, L, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, L, hd]
        s = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-1, -2)
        if mask is not None:
            s = s + mask
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, L, D)
        x = x + self.out(o)
        h = self.fc(self.ln_2(x))
        h = h * torch.sigmoid(1.702 * h) if self.quick else F.gelu(h)
        return x + self.proj(h)


class ImageTower(torch.nn.Module):
    """pixels [B, 3, S, S] -> raw image embeddings [B, E]."""

    def __init__(self, w, cfg, int8=False):
        super().__init__()
        eps, q = cfg["eps"], cfg["quick_gelu"]
        self.patch = cfg["patch"]
        self.conv = _p(w["visual.conv1.weight"])
        self.cls = _p(w["visual.class_embedding"])
        self.pos = _p(w["visual.positional_embedding"])
        self.ln_pre = LayerNorm(w["visual.ln_pre.weight"], w["visual.ln_pre.bias"], eps)
        self.blocks = torch.nn.ModuleList(
            Block(w, "visual.transformer.resblocks.%d." % i, cfg["v_heads"], q, eps, int8)
            for i in range(cfg["v_layers"]))
        self.ln_post = LayerNorm(w["visual.ln_post.weight"], w["visual.ln_post.bias"], eps)
        self.proj = Linear(w["visual.proj"].t().contiguous(), None, int8)

    def forward(self, pixels):
        x = F.conv2d(pixels, self.conv, stride=self.patch)  # [B, W, g, g]
        B, W = x.shape[0], x.shape[1]
        x = x.flatten(2).transpose(1, 2)  # [B, g*g, W]
        x = torch.cat([self.cls.reshape(1, 1, W).expand(B, 1, W), x], dim=1) + self.pos
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        return self.proj(self.ln_post(x[:, 0, :]))


class TextTower(torch.nn.Module):
    """ids int64 [B, L] (L <= context length) -> raw text embeddings [B, E]."""

    def __init__(self, w, cfg, int8=False):
        super().__init__()
        eps, q = cfg["eps"], cfg["quick_gelu"]
        self.tok = _p(w["token_embedding.weight"])
        self.pos = _p(w["positional_embedding"])
        self.blocks = torch.nn.ModuleList(
            Block(w, "transformer.resblocks.%d." % i, cfg["t_heads"], q, eps, int8)
            for i in range(cfg["t_layers"]))
        self.ln_final = LayerNorm(w["ln_final.weight"], w["ln_final.bias"], eps)
        self.proj = Linear(w["text_projection"].t().contiguous(), None, int8)
        C = cfg["ctx"]
        self.register_buffer("mask", torch.full((C, C), float("-inf")).triu(1))

    def forward(self, ids):
        L = ids.shape[1]
        x = F.embedding(ids, self.tok) + self.pos[:L]
        mask = self.mask[:L, :L]
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0]), ids.argmax(dim=-1)]
        return self.proj(x)


def load_towers(model_dir, int8=False):
    """Returns (ImageTower, TextTower, cfg) in float32 eval mode."""
    w, cfg = load_weights(model_dir)
    img, txt = ImageTower(w, cfg, int8).eval(), TextTower(w, cfg, int8).eval()
    return img, txt, cfg


# ---------------------------------------------------------------------------
# Export and check
# ---------------------------------------------------------------------------

def sample_inputs(cfg, tok):
    """Two images (seeded normal noise, a typical normalized range) and three texts."""
    g = torch.Generator().manual_seed(0)
    S = cfg["image_size"]
    pixels = torch.randn(2, 3, S, S, generator=g, dtype=torch.float32)
    texts = ["a diagram", "a photo of dogs", " ".join(["photo"] * 100)]
    ids = np.zeros((len(texts), cfg["ctx"]), dtype=np.int64)
    for i, t in enumerate(texts):
        row, _, _ = tok.tokenize(t, cfg["ctx"])
        ids[i] = row
    return pixels, texts, torch.from_numpy(ids)


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def export(model, args, path, names, dynamic):
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=OPSET, input_names=names[:1],
                          output_names=names[1:], dynamic_axes=dynamic, do_constant_folding=True)
    print("wrote %s (%.1f MB, %.1f s)" % (path, os.path.getsize(path) / 1e6, time.time() - t0))


def main():
    # the exporter's notes on constant head sizes, advanced indexing and g.op() do not apply here
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--int8", action="store_true", help="also write image-int8.onnx and text-int8.onnx")
    ap.add_argument("--int8-bits", type=int, choices=(7, 8), default=7,
                    help="int8 weight range: 7 = [-63, 63] (any x86 CPU), 8 = [-127, 127] (VNNI CPUs only)")
    ap.add_argument("--no-check", action="store_true", help="skip the float64 reference check")
    a = ap.parse_args()
    global INT8_WMAX
    INT8_WMAX = 127.0 if a.int8_bits == 8 else 63.0
    os.makedirs(a.out_dir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    w, cfg = load_weights(a.model_dir)
    towers = {"": (ImageTower(w, cfg).eval(), TextTower(w, cfg).eval())}
    if a.int8:
        towers["-int8"] = (ImageTower(w, cfg, True).eval(), TextTower(w, cfg, True).eval())

    tok = reference.Tokenizer()
    pixels, texts, ids = sample_inputs(cfg, tok)
    n_tok = (ids.argmax(-1) + 1).tolist()

    meta = {"model_dir": os.path.abspath(a.model_dir), "opset": OPSET, "torch": torch.__version__,
            "int8_bits": a.int8_bits if a.int8 else None,
            "cfg": cfg, "texts": texts, "n_tokens": n_tok,
            "bin": {"pixels": [list(pixels.shape), "float32"], "ids": [list(ids.shape), "int64"],
                    "ref_image": None, "ref_text": None}}
    with torch.no_grad():
        if not a.no_check:
            m = reference.load_model(a.model_dir)  # float64, the independent reference
            ref_img = reference.encode_image(m, pixels.double()).numpy()
            ref_txt = reference.encode_text(m, ids).numpy()
            del m
        for suffix, (img, txt) in towers.items():
            e_img = img(pixels).numpy()
            # each text trimmed to its own positions, as the peers feed it
            e_txt = np.concatenate([txt(ids[i:i + 1, :n_tok[i]]).numpy() for i in range(len(texts))])
            e_pad = txt(ids).numpy()
            if not a.no_check:
                ci, ct, cp = cosines(e_img, ref_img), cosines(e_txt, ref_txt), cosines(e_pad, ref_txt)
                print("torch%s vs float64 reference: image cosine min %.7f, text (trimmed) %.7f, "
                      "text (77 positions) %.7f" % (suffix or " fp32", ci.min(), ct.min(), cp.min()))
                meta["torch%s_cosine" % suffix] = {"image": ci.tolist(), "text": ct.tolist()}
                if suffix == "" and min(ci.min(), ct.min(), cp.min()) < 0.99999:
                    sys.exit("export_onnx: the PyTorch modules disagree with tools/reference.py")
            export(img, (pixels[:1],), os.path.join(a.out_dir, "image%s.onnx" % suffix),
                   ["pixels", "embeds"], {"pixels": {0: "batch"}, "embeds": {0: "batch"}})
            export(txt, (ids[1:2, :n_tok[1]],), os.path.join(a.out_dir, "text%s.onnx" % suffix),
                   ["ids", "embeds"], {"ids": {0: "batch", 1: "positions"}, "embeds": {0: "batch"}})

    # sample.bin: pixels f32, ids i64, then (if checked) reference image and text embeddings f32
    with open(os.path.join(a.out_dir, "sample.bin"), "wb") as f:
        f.write(pixels.numpy().astype("<f4").tobytes())
        f.write(ids.numpy().astype("<i8").tobytes())
        if not a.no_check:
            f.write(ref_img.astype("<f4").tobytes())
            f.write(ref_txt.astype("<f4").tobytes())
            meta["bin"]["ref_image"] = [list(ref_img.shape), "float32"]
            meta["bin"]["ref_text"] = [list(ref_txt.shape), "float32"]
    with open(os.path.join(a.out_dir, "sample.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
