"""Dropless expert MLP in plain torch with a hand-written backward: the fast path of kernels="torch".

Same semantics as `jpmoe.kernels.moe_mlp.moe_mlp_reference` (its test oracle), built for CPU throughput:
- (token, expert) pairs are sorted by expert once; each expert multiplies contiguous row slices;
- the gate and up projections are one matmul against the fused (2I, H) weight;
- each expert's slice is zero-padded to a bucketed row count, so the matmuls see a handful of distinct shapes;
- matmuls run per expert slice, the SwiGLU and its derivative once over the whole buffer (a few large ops rather
  than a few per expert: each op costs a thread synchronisation, which hurts most with E=64 on a busy machine);
- the backward writes each expert's weight gradient in place (no full-size zero tensors per expert, which is
  where autograd through `w[e]` indexing spends most of its time) and uses one fused silu derivative;
- the combine is a deterministic gather + sum over K (no index_add), forward and backward.
bf16 inputs stay bf16 through the matmuls (oneDNN uses the AMX/AVX512-bf16 units where the CPU has them).

Letters: T tokens, K experts per token, P = T*K pairs, E experts, H hidden, I intermediate, R rows in a chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK_ROWS = 4096  # most rows per matmul call (bounds one call; tests set it small)


def align_rows(n: int) -> int:
    """Round a row count up to a bucket: multiples of 32, or of n/16 for large n (<= 6.25% padding). Few distinct
    matmul shapes, so oneDNN's JIT-compiled bf16 (AMX) kernels are reused instead of rebuilt for every count."""
    if n == 0:
        return 0
    step = max(32, 1 << max(n.bit_length() - 5, 0))
    return -(-n // step) * step


class _Layout:
    """Where each (token, expert) pair lives in the padded, expert-sorted row buffer.

    slot (P,): padded row of pair p = t * K + k; sorted_slot/sorted_pair: the same in expert order;
    chunks: (expert, row slice) covering every expert's padded slice in pieces of at most CHUNK_ROWS rows.
    """

    def __init__(self, experts: torch.Tensor, num_experts: int):
        flat = experts.reshape(-1)  # (P,)
        self.sorted_pair = torch.argsort(flat, stable=True)  # pair ids grouped by expert
        counts = torch.bincount(flat, minlength=num_experts)  # (E,)
        padded = torch.tensor([align_rows(n) for n in counts.tolist()], device=flat.device)
        start, pstart = counts.cumsum(0) - counts, padded.cumsum(0) - padded  # (E,) slice starts
        e_sorted = flat[self.sorted_pair]
        rank = torch.arange(flat.numel(), device=flat.device) - start[e_sorted]  # position inside its expert
        self.sorted_slot = pstart[e_sorted] + rank  # (P,)
        self.slot = torch.empty_like(self.sorted_slot)
        self.slot[self.sorted_pair] = self.sorted_slot
        self.rows = int(padded.sum())
        is_pad = torch.ones(self.rows, dtype=torch.bool, device=flat.device)
        is_pad[self.sorted_slot] = False
        self.pad_slots = is_pad.nonzero().squeeze(1)  # padding rows, zeroed in every scattered buffer
        self.slot_pair = torch.zeros(self.rows, dtype=torch.long, device=flat.device)  # pair at each row, 0 on pads
        self.slot_pair[self.sorted_slot] = self.sorted_pair
        self.empty_experts = [e for e, n in enumerate(padded.tolist()) if n == 0]
        self.chunks = []
        for e, (s, n) in enumerate(zip(pstart.tolist(), padded.tolist())):
            self.chunks += [(e, slice(r, min(r + CHUNK_ROWS, s + n))) for r in range(s, s + n, CHUNK_ROWS)]

    def scatter(self, src: torch.Tensor, rows_of_slots: torch.Tensor) -> torch.Tensor:
        """Padded buffer (rows, N) = src[rows_of_slots] with zeros in the padding rows (one gather, no copy)."""
        return src.index_select(0, rows_of_slots).index_fill_(0, self.pad_slots, 0)


def _per_expert_mm(a: torch.Tensor, w: torch.Tensor, lay: _Layout, out: torch.Tensor, transpose: bool):
    """out[rows of e] = a[rows of e] @ (w[e].t() if transpose else w[e]) for every expert's padded slice."""
    for e, r in lay.chunks:
        torch.mm(a[r], w[e].t() if transpose else w[e], out=out[r])
    return out


class GroupedMoEMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_gate_up, w_down, weights, experts):
        T, K = experts.shape
        E, two_i, H = w_gate_up.shape
        inter = two_i // 2
        lay = _Layout(experts, E)
        xs = lay.scatter(x, lay.slot_pair // K)  # (rows, H) padded, expert-sorted inputs
        hs = _per_expert_mm(xs, w_gate_up, lay, x.new_empty(lay.rows, two_i), True)  # (rows, 2I) gate | up
        silu = F.silu(hs[:, :inter])  # (rows, I); whole-buffer ops: few ops, few thread syncs
        a = silu * hs[:, inter:]  # (rows, I) activation; silu and a are kept: 2 fewer passes in the backward
        ys = _per_expert_mm(a, w_down, lay, x.new_empty(lay.rows, H), True)  # (rows, H) unweighted outputs
        w = weights.to(x.dtype)
        y = ys.index_select(0, lay.slot).view(T, K, H)  # (T, K, H) back in token order
        out = torch.bmm(w.unsqueeze(1), y).squeeze(1)  # (T, H) = sum_k w[t, k] * y[t, k]
        ctx.save_for_backward(x, w_gate_up, w_down, w, xs, hs, silu, a, ys)
        ctx.lay, ctx.weights_dtype = lay, weights.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, w_gate_up, w_down, w, xs, hs, silu, act, ys = ctx.saved_tensors
        lay = ctx.lay
        T, K = w.shape
        inter, H = hs.shape[1] // 2, x.shape[1]
        go = lay.scatter(grad_out.contiguous(), lay.slot_pair // K)  # (rows, H) output gradient of each pair's token
        grad_w = (go * ys).sum(1).index_select(0, lay.slot).view(T, K)  # <g[t], y[t, k]>
        gy = go.mul_(lay.scatter(w.reshape(-1, 1), lay.slot_pair))  # (rows, H), times w; 0 on padding
        ga = _per_expert_mm(gy, w_down, lay, torch.empty_like(hs[:, :inter]), False)  # (rows, I) d activation
        gate, up = hs[:, :inter], hs[:, inter:]
        dh = torch.empty_like(hs)  # (rows, 2I)
        torch.mul(ga, silu, out=dh[:, inter:])  # d/d up
        torch.ops.aten.silu_backward(ga.mul_(up), gate, grad_input=dh[:, :inter])  # d/d gate
        g_gate_up, g_down = torch.empty_like(w_gate_up), torch.empty_like(w_down)
        for e in lay.empty_experts:  # experts no token chose get zero gradients
            g_gate_up[e].zero_()
            g_down[e].zero_()
        first = set()
        for e, r in lay.chunks:
            beta = 1 if e in first else 0  # the first chunk of an expert writes, later ones accumulate
            first.add(e)
            g_down[e].addmm_(gy[r].t(), act[r], beta=beta)  # (H, I) = beta * . + gy^T a
            g_gate_up[e].addmm_(dh[r].t(), xs[r], beta=beta)  # (2I, H) = beta * . + dh^T x
        gxs = _per_expert_mm(dh, w_gate_up, lay, torch.empty_like(gy), False)  # (rows, H)
        grad_x = gxs.index_select(0, lay.slot).view(T, K, H).sum(1)  # (T, H)
        return grad_x, g_gate_up, g_down, grad_w.to(ctx.weights_dtype), None


@torch.no_grad()
def _inference(x, w_gate_up, w_down, weights, experts) -> torch.Tensor:
    """The forward without saving anything: per-chunk temporaries only (no full-size buffers to page in)."""
    T, K = experts.shape
    E, two_i, H = w_gate_up.shape
    inter = two_i // 2
    lay = _Layout(experts, E)
    token = lay.slot_pair // K  # (rows,) token of each row; padding rows read token 0, their outputs are unused
    ys = x.new_empty(lay.rows, H)
    for e, r in lay.chunks:
        h = x.index_select(0, token[r]) @ w_gate_up[e].t()  # (R, 2I)
        a = F.silu(h[:, :inter]).mul_(h[:, inter:])  # (R, I)
        torch.mm(a, w_down[e].t(), out=ys[r])
    y = ys.index_select(0, lay.slot).view(T, K, H)  # (T, K, H)
    return torch.bmm(weights.to(x.dtype).unsqueeze(1), y).squeeze(1)


def grouped_moe_mlp(x: torch.Tensor, w_gate_up: torch.Tensor, w_down: torch.Tensor, weights: torch.Tensor,
                    experts: torch.Tensor) -> torch.Tensor:
    """out[t] = sum_k weights[t, k] * down_e(silu(gate_e(x[t])) * up_e(x[t])), e = experts[t, k].

    x (T, H); w_gate_up (E, 2I, H) gate rows first; w_down (E, H, I); weights (T, K); experts (T, K) int64.
    Returns (T, H) in x.dtype.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, w_gate_up, w_down, weights)):
        return GroupedMoEMLP.apply(x, w_gate_up, w_down, weights, experts)
    return _inference(x, w_gate_up, w_down, weights, experts)
