"""Independent analytic FLOP counts (2 per multiply-accumulate) from a model's config numbers.

Written from the architectures' definitions, not from hwsim's code: each matrix product of the model is
listed by hand. Used by the tests to check what the importer counts from the graph.
"""

from __future__ import annotations


def _layer_matmuls(cfg: dict, tokens: int, batch: int, q_len: int, kv_len: int) -> float:
    """One transformer layer: Q/K/V/O projections, QK^T and PV over kv_len keys, MLP."""
    d, h, hkv, hd, ff = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"], cfg["d_ff"]
    proj = 2 * tokens * d * (h * hd + 2 * hkv * hd) + 2 * tokens * (h * hd) * d
    attn = 2 * 2 * batch * h * q_len * kv_len * hd
    mlp = (3 if cfg["gated_mlp"] else 2) * 2 * tokens * d * ff
    return float(proj + attn + mlp)


def decoder_only(cfg: dict, batch: int, q_len: int, kv_len: int) -> float:
    """GPT-2 / OPT / Llama / Qwen2: ``q_len`` new tokens attending to ``kv_len`` keys (prefill: equal)."""
    tokens = batch * q_len
    total = cfg["n_layers"] * _layer_matmuls(cfg, tokens, batch, q_len, kv_len)
    width = cfg.get("word_embed_proj_dim") or cfg["d_model"]
    if cfg.get("has_embed_projection"):
        total += 2 * (2 * tokens * width * cfg["d_model"])  # OPT-350m project_in and project_out
    if cfg["has_lm_head"]:
        total += 2 * tokens * width * cfg["vocab"]
    return total


def bert(cfg: dict, batch: int, seq: int) -> float:
    """BERT encoder plus pooler (a d x d dense on the [CLS] token)."""
    total = cfg["n_layers"] * _layer_matmuls(cfg, batch * seq, batch, seq, seq)
    if cfg.get("has_pooler"):
        total += 2 * batch * cfg["d_model"] * cfg["d_model"]
    return total


def vit(cfg: dict, batch: int) -> float:
    """ViT: patch-embedding convolution, encoder over patches + [CLS], classifier on [CLS]."""
    patches = (cfg["image_size"] // cfg["patch_size"]) ** 2
    seq = patches + 1
    conv = 2 * batch * patches * cfg["d_model"] * cfg["num_channels"] * cfg["patch_size"] ** 2
    total = conv + cfg["n_layers"] * _layer_matmuls(cfg, batch * seq, batch, seq, seq)
    return total + 2 * batch * cfg["d_model"] * cfg["num_labels"]


def t5(cfg: dict, batch: int, enc_len: int, dec_len: int) -> float:
    """T5: encoder self-attention layers; decoder self + cross attention layers; LM head on decoder tokens."""
    d, h, hd, ff = cfg["d_model"], cfg["n_heads"], cfg["head_dim"], cfg["d_ff"]
    enc = cfg["n_encoder_layers"] * _layer_matmuls(cfg, batch * enc_len, batch, enc_len, enc_len)
    dec_self = _layer_matmuls(cfg, batch * dec_len, batch, dec_len, dec_len)
    cross = (2 * batch * dec_len * d * h * hd * 2          # Q and O on decoder tokens
             + 2 * batch * enc_len * d * h * hd * 2        # K and V on encoder tokens
             + 2 * 2 * batch * h * dec_len * enc_len * hd)  # scores and PV
    dec = cfg["n_decoder_layers"] * (dec_self + cross)
    return enc + dec + 2 * batch * dec_len * d * cfg["vocab"] + 0 * ff


def prefill_flops(entry: dict, batch: int, seq: int, dec_len: int = 5) -> float:
    """Matmul FLOPs of one forward pass of the model described by a manifest ``entry``."""
    cfg, arch = entry["config"], entry["arch"]
    if arch == "bert":
        return bert(cfg, batch, seq)
    if arch == "vit":
        return vit(cfg, batch)
    if arch == "t5":
        return t5(cfg, batch, seq, dec_len)
    return decoder_only(cfg, batch, seq, seq)
