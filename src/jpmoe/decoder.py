"""Step-wise batched decoding with a static KV cache: rows join (prefill) and leave (stop, length, cancellation)
between steps, so a server batches whatever requests are running into one forward per step.

Layout: the cache holds `max_batch` slots of (n_kv, max_len, D) per layer, preallocated once. The running rows
occupy slots 0..B-1 in order; row b keeps its own tokens in columns [0, length_b) and writes its next token at
column length_b, so rows of different lengths never need re-padding or shifting. A row that leaves is replaced by
the last row (one slot copied), which keeps the batch a contiguous view of the cache.

The forward is written here over the model's own weights (a fused QKV copy per layer, the norms, MLPs and MoE
layers of the model), without the training forward's checks, 4-D mask building and auxiliary losses: at batch 1
the per-step Python and small-op overhead is what separates a fast CPU generator from transformers' `generate`
(the gpt-fast lesson). tests/moe/test_generate.py holds it to transformers' greedy output, batched and alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from jpmoe.attention import rope_cos_sin
from jpmoe.model import Transformer
from jpmoe.moe import MoE
from jpmoe.sampling import SamplingParams, sample_rows


@dataclass(eq=False)
class Row:
    """One sequence being generated. `finish` is None while it runs, then "stop", "length" or "cancelled"."""

    prompt: list[int]
    params: SamplingParams
    generator: torch.Generator | None = None
    tag: Any = None  # the caller's handle (request, choice index)
    tokens: list[int] = field(default_factory=list)  # generated so far
    finish: str | None = None
    slot: int = -1  # -1: not in the batch (never added, or left)

    @property
    def length(self) -> int:
        """Tokens in the cache: the prompt and every generated token but the newest (fed at the next step)."""
        return len(self.prompt) + len(self.tokens) - 1


class SlotCache:
    """Per layer: keys and values of every slot, (max_batch, n_kv, max_len, D) each, written in place, never
    reallocated; keys are stored in the decoder's interleaved rotary layout (see `fuse_qkv`). Separate key and
    value tensors keep (slots, heads) mergeable into one batch dimension for bmm."""

    def __init__(self, model: Transformer, max_batch: int, max_len: int):
        cfg, p = model.config, model.tok_embeddings.weight
        shape = (max_batch, cfg.num_kv_heads, max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.num_layers)]
        self.v = [torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(cfg.num_layers)]
        self.max_batch, self.max_len = max_batch, max_len

    def move(self, src: int, dst: int, length: int) -> None:
        for t in (*self.k, *self.v):
            t[dst, :, :length] = t[src, :, :length]


def fuse_qkv(model: Transformer) -> list[torch.Tensor]:
    """Per layer one ((nH + 2 nKV) * D, H) projection of the *unweighted* normalised input: [wq; wk; wv] with
    - the attention norm's weight folded in (W diag(w) x = W (w * x)),
    - the 1/sqrt(D) attention scale folded into wq,
    - wq and wk rows of each head reordered from the two-halves rotary layout (x1 | x2) to interleaved pairs
      (x1_0, x2_0, x1_1, ...), so that rotary is one complex multiply (as gpt-fast); q.k is unchanged because
      queries and keys are permuted alike.
    Copies in fp32, rounded once to the model dtype: the model itself is untouched."""
    cfg = model.config
    D, H = cfg.head_dim, cfg.hidden_size
    perm = torch.arange(D, device=model.inv_freq.device).view(2, D // 2).t().reshape(-1)  # (D,)
    out = []
    for block in model.layers:
        a, w = block.attn, block.attn_norm.weight.float()
        wq = a.wq.weight.float().view(cfg.num_heads, D, H)[:, perm].reshape(-1, H) * D**-0.5
        wk = a.wk.weight.float().view(cfg.num_kv_heads, D, H)[:, perm].reshape(-1, H)
        out.append((torch.cat([wq, wk, a.wv.weight.float()]) * w).to(a.wq.weight.dtype).contiguous())
    return out


def mm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x (N, in) @ w (out, in).T: F.linear without its dispatch layers (2-D only)."""
    return torch.mm(x, w.t())


def rotate_(qk: torch.Tensor, freqs: torch.Tensor) -> None:
    """Rotary in place on qk (B, T, heads, D) in interleaved layout; freqs (B, T, 1, D/2) complex64."""
    if qk.dtype == torch.float32:
        torch.view_as_complex(qk.unflatten(-1, (-1, 2))).mul_(freqs)
    else:  # complex needs fp32; as the reference, rotate in fp32 and round once
        rot = torch.view_as_complex(qk.float().unflatten(-1, (-1, 2))) * freqs
        qk.copy_(torch.view_as_real(rot).flatten(-2))


class Decoder:
    """Batched step-wise generation. `add` prefills new rows and samples their first token; `step` runs one forward
    for every running row and appends one token to each; rows that hit a stop token or their max_new_tokens leave
    the batch; `finish` removes a row from outside (a stop string, a cancelled request). The fused QKV weights are
    copied from the model at construction: build a new Decoder after the model's weights change."""

    def __init__(self, model: Transformer, *, max_batch: int, max_len: int | None = None):
        cfg = model.config
        self.model, self.cfg = model, cfg
        self.max_len = min(max_len or cfg.max_seq_len, cfg.max_seq_len)
        self.cache = SlotCache(model, max_batch, self.max_len)
        self.device = model.tok_embeddings.weight.device
        self.seen = torch.zeros(max_batch, cfg.vocab_size, dtype=torch.bool, device=self.device)  # (slots, V)
        self.qkv = fuse_qkv(model)
        self.norm_consts: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}  # eps -> (eps, 1/H) as 0-d tensors
        cos, sin = rope_cos_sin(model.inv_freq, torch.arange(self.max_len, device=self.device)[None])  # (1, S, D/2)
        self.freqs = torch.complex(cos[0], sin[0])  # (max_len, D/2) complex64: the rotation of every position
        self.rows: list[Row] = []

    @property
    def free_slots(self) -> int:
        return self.cache.max_batch - len(self.rows)

    def check(self, prompt: Sequence[int], params: SamplingParams) -> None:
        """Raise ValueError for a row that cannot run: empty, ids outside the vocabulary, longer than the cache."""
        if not prompt:
            raise ValueError("every prompt needs at least one token")
        V = self.cfg.vocab_size
        if min(prompt) < 0 or max(prompt) >= V:
            raise ValueError(f"token ids must be in [0, {V}), got min {min(prompt)} max {max(prompt)}")
        if len(prompt) + params.max_new_tokens > self.max_len:
            raise ValueError(f"prompt length {len(prompt)} + max_new_tokens {params.max_new_tokens} exceeds "
                             f"max_seq_len {self.max_len}")

    @torch.no_grad()
    def add(self, rows: Sequence[Row]) -> None:
        """Prefill `rows` together (right-padded) into free slots and sample each one's first token."""
        if len(rows) > self.free_slots:
            raise ValueError(f"{len(rows)} rows do not fit: {self.free_slots} free slots")
        for r in rows:
            self.check(r.prompt, r.params)
        n, start = len(rows), len(self.rows)
        lens = [len(r.prompt) for r in rows]
        P = max(lens)
        ids = torch.zeros(n, P, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : lens[i]] = torch.as_tensor(r.prompt, dtype=torch.long)
            r.slot = start + i
        ids = ids.to(self.device)
        freqs = self.freqs[:P][None, :, None]  # (1, P, 1, D/2): every row starts at column 0
        mask = None  # one row, or rows of one length: plain causal attention
        if min(lens) != P:
            col = torch.arange(P, device=self.device)
            real = col[None, :] < torch.tensor(lens, device=self.device)[:, None]  # (n, P)
            mask = ((col[None, :] <= col[:, None])[None] & real[:, None, :])[:, None]  # (n, 1, P, P)
        slots = slice(start, start + n)

        def write(layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
            self.cache.k[layer][slots, :, :P] = k
            self.cache.v[layer][slots, :, :P] = v

        x = self._layers(ids, freqs, mask, write)  # (n, P, H)
        last = x[torch.arange(n, device=self.device), torch.tensor(lens, device=self.device) - 1]  # (n, H)
        logits = self.model.lm_head(self._norm(self.model.norm, last))  # (n, V)
        seen = self.seen[slots]
        seen.zero_()
        seen.scatter_(1, ids, True)  # pads are id 0 ...
        for i, r in enumerate(rows):  # ... so id 0 is set again from the real prompt only
            seen[i, 0] = 0 in r.prompt
        self.rows.extend(rows)
        self._append(rows, logits)

    @torch.no_grad()
    def step(self) -> list[Row]:
        """One token for every running row; returns those rows (finished ones already out of the batch)."""
        rows = list(self.rows)
        if not rows:
            return []
        B, nKV = len(rows), self.cfg.num_kv_heads
        lengths = [r.length for r in rows]
        S = max(lengths) + 1
        ids = torch.tensor([r.tokens[-1] for r in rows], device=self.device)  # (B,)
        if min(lengths) == S - 1:  # every row at the same column: plain slices, no mask
            L = S - 1
            freqs, mask, cols = self.freqs[L : L + 1][:, None], None, L  # (1, 1, D/2)
        else:  # rows of different lengths: each writes its own column and sees its own columns only
            cols = torch.tensor(lengths, device=self.device)  # (B,)
            freqs = self.freqs[cols][:, None]  # (B, 1, D/2)
            mask = (torch.arange(S, device=self.device)[None, :] <= cols[:, None])  # (B, S)
            mask = mask[:, None, None, :].expand(B, nKV, 1, S).reshape(B * nKV, 1, S)  # per (row, head)
        x = self._decode_layers(ids, freqs, mask, cols, S)  # (B, H)
        logits = mm(self._norm(self.model.norm, x), self.model.lm_head.weight)  # (B, V)
        self._append(rows, logits)
        return rows

    def finish(self, row: Row, reason: str) -> None:
        """Take `row` out of the batch (if still in it): the last row moves into its slot."""
        row.finish = row.finish or reason
        if row.slot < 0:
            return
        i, last = row.slot, self.rows[-1]
        if last is not row:
            self.cache.move(last.slot, i, last.length + 1)
            self.seen[i] = self.seen[last.slot]
            last.slot, self.rows[i] = i, last
        self.rows.pop()
        row.slot = -1

    def _append(self, rows: list[Row], logits: torch.Tensor) -> None:
        slots = [r.slot for r in rows]
        toks = sample_rows(logits, self.seen[slots[0] : slots[-1] + 1], [r.params for r in rows],
                           [r.generator for r in rows])
        pen = [i for i, r in enumerate(rows) if r.params.repetition_penalty != 1.0]  # only they read `seen`
        if pen:
            self.seen[torch.tensor([slots[i] for i in pen], device=self.device),
                      torch.tensor([toks[i] for i in pen], device=self.device)] = True
        for r, t in zip(rows, toks):
            r.tokens.append(t)
            if t in r.params.stop_token_ids:
                self.finish(r, "stop")
            elif len(r.tokens) >= r.params.max_new_tokens:
                self.finish(r, "length")

    def _layers(self, ids: torch.Tensor, freqs: torch.Tensor, mask: torch.Tensor | None, write) -> torch.Tensor:
        """Prefill: the blocks over ids (n, P) rotated by freqs (1, P, 1, D/2), causal within the block (and
        `mask` for right padding); `write(layer, k, v)` stores the new keys and values (n, nKV, P, D)."""
        cfg, model = self.cfg, self.model
        B, T = ids.shape
        D, nH, nKV = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
        x = model.tok_embeddings(ids)  # (B, T, H)
        for layer, block in enumerate(model.layers):
            qkv = F.linear(self._norm(None, x, block.attn_norm.eps), self.qkv[layer])  # norm weight folded in
            qkv = qkv.view(B, T, nH + 2 * nKV, D)
            rotate_(qkv[:, :, : nH + nKV], freqs)
            q = qkv[:, :, :nH].transpose(1, 2)  # (B, nH, T, D)
            k = qkv[:, :, nH : nH + nKV].transpose(1, 2)  # (B, nKV, T, D)
            v = qkv[:, :, nH + nKV :].transpose(1, 2)
            write(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=1.0,
                                               enable_gqa=nKV != nH)  # (B, nH, T, D); q is scaled
            x = x + block.attn.wo(y.transpose(1, 2).reshape(B, T, nH * D))
            m = block.mlp(self._norm(block.mlp_norm, x))
            x = x + (m[0] if isinstance(block.mlp, MoE) else m)
        return x

    def _decode_layers(self, ids: torch.Tensor, freqs: torch.Tensor, mask: torch.Tensor | None, cols, S: int,
                       ) -> torch.Tensor:
        """One token per running row, kept 2-D (B, H) throughout (a 2-D linear is one matmul, no reshapes):
        ids (B,), freqs (B or 1, 1, D/2), `cols` the column each row writes (an int when all rows share it, else
        (B,)), S the columns attended to."""
        cfg, model = self.cfg, self.model
        B = ids.shape[0]
        D, nH, nKV = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
        batch = slice(0, B) if isinstance(cols, int) else torch.arange(B, device=self.device)
        x = F.embedding(ids, model.tok_embeddings.weight)  # (B, H); modules' __call__ costs more than the op
        g = nH // nKV
        for layer, block in enumerate(model.layers):
            qkv = mm(self._norm(None, x, block.attn_norm.eps), self.qkv[layer]).view(B, nH + 2 * nKV, D)
            rotate_(qkv[:, : nH + nKV], freqs)
            kc, vc = self.cache.k[layer], self.cache.v[layer]
            kc[batch, :, cols] = qkv[:, nH : nH + nKV]  # (B, nKV, D) at (slot b, column b)
            vc[batch, :, cols] = qkv[:, nH + nKV :]
            k = kc[:B, :, :S].view(B * nKV, S, D)  # views: (slots, heads) merge, columns stay strided
            v = vc[:B, :, :S].view(B * nKV, S, D)
            s = torch.bmm(qkv[:, :nH].reshape(B * nKV, g, D), k.transpose(1, 2))  # (B nKV, g, S)
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            p = s.softmax(-1) if s.dtype == torch.float32 else s.float().softmax(-1).to(v.dtype)
            y = torch.bmm(p, v)  # (B nKV, g, D): query head h = kv head h // g, as enable_gqa
            x = x + mm(y.view(B, nH * D), block.attn.wo.weight)
            x = x + self._mlp(block, self._norm(block.mlp_norm, x))
        return x

    def _mlp(self, block, h: torch.Tensor) -> torch.Tensor:
        """The block's MLP; the dense torch-kernel one inline (its module adds dtype round trips per call)."""
        mlp = block.mlp
        if isinstance(mlp, MoE):
            return mlp(h)[0]
        if self.cfg.kernels != "torch" or h.dtype != torch.float32:
            return mlp(h)
        gate_up = mm(h, mlp.w_gate_up.weight)  # (B, 2I): gate rows first
        a = F.silu(gate_up[:, : mlp.intermediate_size])
        return mm(a.mul_(gate_up[:, mlp.intermediate_size :]), mlp.w_down.weight)

    def _norm(self, norm, x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """RMSNorm as the reference (statistics in fp32); norm None: without its weight (folded elsewhere).
        Written out, with eps and 1/H as 0-d tensors: torch's CPU rms_norm (and mean, and any op with a Python
        scalar) copies its scalars on every call, 16 dispatches against 7."""
        w, eps = (None, eps) if norm is None else (norm.weight, norm.eps)
        if eps not in self.norm_consts:
            self.norm_consts[eps] = (torch.tensor(eps, device=self.device),
                                     torch.tensor(1.0 / x.shape[-1], device=self.device))
        eps_t, inv_h = self.norm_consts[eps]
        h = x.float()
        h = h * torch.addcmul(eps_t, torch.sum(h * h, -1, keepdim=True), inv_h).rsqrt_()
        h = h.to(x.dtype)
        return h if w is None else h * w
