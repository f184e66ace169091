"""The expert MLP of kernels="torch": plain torch with a hand-written backward, tuned for CPU (it runs on any device).

The dropless expert MLP has three implementations of one contract, side by side in jpmoe.kernels:
`moe_mlp.moe_mlp_reference` (the specification and test oracle: a loop over experts), this file (the "torch" path)
and `moe_mlp.moe_mlp_triton` (the "triton" path). This one has the reference's semantics, built for CPU throughput:
- (token, expert) pairs are sorted by expert once into a padded row buffer (`moe_mlp_torch_layout`): runs of
  experts share a row capacity, so each run's matmuls are one `torch.bmm` (large, few calls, 2 threads busy);
- the gate and up projections are one matmul against the fused (2I, H) weight;
- the forward's SwiGLU runs run by run, right after that run's gate-up matmul; its derivative runs once over the
  whole buffer (few ops, few thread synchronisations);
- the backward writes each run's weight gradient with one bmm (no full-size zero tensors per expert, which is
  where autograd through `w[e]` indexing spends most of its time) and skips the gradients nobody asked for;
- large temporaries and saved activations come from a reusable CPU pool (`moe_mlp_torch_workspace`): without it
  every call page-faults its buffers in again;
- the combine and its input gradient are one fused, deterministic gather + weighted sum (`embedding_bag`).
bf16 inputs stay bf16 through the matmuls and the SwiGLU (oneDNN uses the AMX/AVX512-bf16 units where the CPU
has them); only the router runs in fp32.

Letters: T tokens, K experts per token, P = T*K pairs, E experts, H hidden, I intermediate, N rows of the buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jpmoe.kernels.moe_mlp_torch_layout import ExpertLayout, Group
from jpmoe.kernels.moe_mlp_torch_workspace import WORKSPACE

TRANSPOSE_ROWS = 64  # row block of the transposing copies
WGRAD_COPY_MIN_N = 1024  # 16-bit weight gradients with at least this many output columns get a contiguous A^T


def _new(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return WORKSPACE.empty(shape, like.dtype, like.device)


def _grad_buffer(like: torch.Tensor) -> torch.Tensor:
    """A contiguous gradient for `like`, also from the pool: it is handed back only once autograd, the optimizer
    and the user have all dropped it (e.g. zero_grad(set_to_none=True)), so next step's backward does not fault a
    fresh 32-64 MiB allocation in again."""
    return _new(tuple(like.shape), like)


def _group_mm(a: torch.Tensor, w: torch.Tensor, lay: ExpertLayout, g: Group, out: torch.Tensor, transpose: bool):
    """out[rows of e] = a[rows of e] @ (w[e].t() if transpose else w[e]) for the experts of group g."""
    if g.e1 - g.e0 == 1:  # a one-expert group as a plain mm: bf16 bmm with batch 1 runs ~15x slower (oneDNN)
        torch.mm(lay.rows_of(a, g), w[g.e0].t() if transpose else w[g.e0], out=lay.rows_of(out, g))
    else:
        we = w[g.e0 : g.e1]
        torch.bmm(lay.batches(a, g), we.transpose(1, 2) if transpose else we, out=lay.batches(out, g))


def _grouped_mm(a: torch.Tensor, w: torch.Tensor, lay: ExpertLayout, out: torch.Tensor, transpose: bool):
    """_group_mm over every group that has rows."""
    for g in lay.groups:
        if g.cap:
            _group_mm(a, w, lay, g, out, transpose)
    return out


def _rows_transposed(a: torch.Tensor) -> torch.Tensor:
    """(n, C, R) contiguous copy of a (n, R, C) view, 64 rows at a time (a plain transposing copy of a wide bf16
    buffer runs at 0.6 GB/s, row blocks at 4 GB/s)."""
    out = _new((a.shape[0], a.shape[2], a.shape[1]), a)
    for r in range(0, a.shape[1], TRANSPOSE_ROWS):
        out[:, :, r : r + TRANSPOSE_ROWS].copy_(a[:, r : r + TRANSPOSE_ROWS].transpose(1, 2))
    return out


def _grouped_wgrad(a: torch.Tensor, b: torch.Tensor, lay: ExpertLayout, out: torch.Tensor) -> torch.Tensor:
    """out[e] = a[rows of e]^T @ b[rows of e] (a weight gradient); zero for experts in an empty group.

    16-bit with wide b: the matmul gets a contiguous copy of a^T. oneDNN's bf16 matmul re-transposes a transposed
    A for every block of output columns (0.9-1.5 TFLOP/s against ~2.8 from a contiguous one), so one copy pays
    off once b has >= WGRAD_COPY_MIN_N columns (measured: H=1024, I=2048 backward 81 -> 70 ms; no gain at 512)."""
    copy_a = a.device.type == "cpu" and a.dtype.itemsize == 2 and b.shape[1] >= WGRAD_COPY_MIN_N  # GPUs: no need
    for g in lay.groups:
        if g.cap == 0:
            out[g.e0 : g.e1].zero_()
            continue
        a_g, b_g = lay.batches(a, g), lay.batches(b, g)
        a_t = _rows_transposed(a_g) if copy_a else a_g.transpose(1, 2)
        if g.e1 - g.e0 == 1:
            torch.mm(a_t[0], b_g[0], out=out[g.e0])
        else:
            torch.bmm(a_t, b_g, out=out[g.e0 : g.e1])
    return out


def _experts_forward(x, w_gate_up, w_down, lay: ExpertLayout, keep: bool):
    """Rows of every pair through its expert's SwiGLU MLP. Returns ys (N, H) and, if keep, what the backward needs.
    Group by group (gate-up, SwiGLU, down), so the SwiGLU reads a group's gate-up output while it is still in
    cache."""
    H, inter = x.shape[1], w_gate_up.shape[1] // 2
    xs = lay.gather_rows(x, _new((lay.rows, H), x))  # (N, H) padded, expert-sorted inputs
    hs = _new((lay.rows, 2 * inter), x)  # (N, 2I) gate | up
    silu = _new((lay.rows, inter), x)  # (N, I)
    act = _new((lay.rows, inter), x) if keep else silu  # (N, I) silu(gate) * up
    ys = _new((lay.rows, H), x)  # (N, H) unweighted outputs, 0 on padding
    for g in lay.groups:
        if g.cap:
            _group_mm(xs, w_gate_up, lay, g, hs, True)
            h = lay.rows_of(hs, g)
            torch.mul(torch.ops.aten.silu.out(h[:, :inter], out=lay.rows_of(silu, g)), h[:, inter:],
                      out=lay.rows_of(act, g))
            _group_mm(act, w_down, lay, g, ys, True)
    return ys, ((xs, hs, silu, act) if keep else ())


def _bag_sum(rows: torch.Tensor, lay: ExpertLayout, w: torch.Tensor | None = None) -> torch.Tensor:
    """(T, H) = sum_k w[t, k] * rows[slot of (t, k)] (w None: plain sum), the combine and its input gradient.

    One fused gather + (weighted) sum: `embedding_bag` with token t's K rows as bag t (FBGEMM's kernel, which
    accumulates 16-bit rows in fp32 and rounds once). It replaces an index_select into a (T*K, H) temporary
    followed by a batched dot or a sum over K: bf16 E=64 K=8 2.5 -> 0.7 ms, fp32 4.7 -> 1.0 ms. Deterministic:
    each bag is summed in k order by one thread."""
    return F.embedding_bag(lay.slot, rows, lay.bag_offsets, mode="sum",
                           per_sample_weights=None if w is None else w.reshape(-1))


class GroupedMoEMLP(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w_gate_up, w_down, weights, experts):
        lay = ExpertLayout(experts, w_gate_up.shape[0], x.dtype)
        ys, (xs, hs, silu, act) = _experts_forward(x, w_gate_up, w_down, lay, keep=True)
        w = weights.to(x.dtype)
        out = _bag_sum(ys, lay, w)
        ctx.save_for_backward(w_gate_up, w_down, w, xs, hs, silu, act, ys)
        ctx.lay, ctx.weights_dtype = lay, weights.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out):
        w_gate_up, w_down, w, xs, hs, silu, act, ys = ctx.saved_tensors
        lay, need = ctx.lay, ctx.needs_input_grad
        T, K = w.shape
        inter, H = hs.shape[1] // 2, xs.shape[1]
        go = lay.gather_rows(grad_out.contiguous(), _new((lay.rows, H), xs))  # (N, H) d out of each row's token
        grad_w = None
        if need[3]:  # <g[t], y[t, k]>
            dots = torch.mul(go, ys, out=_new((lay.rows, H), xs)).sum(1)  # (N,)
            grad_w = dots.index_select(0, lay.slot).view(T, K).to(ctx.weights_dtype)
        gy = go.mul_(lay.row_weights(w))  # (N, H), times the pair's routing weight
        ga = _grouped_mm(gy, w_down, lay, _new((lay.rows, inter), xs), False)  # (N, I) d activation
        dh = _new((lay.rows, 2 * inter), xs)  # (N, 2I) d gate | d up
        torch.mul(ga, silu, out=dh[:, inter:])
        torch.ops.aten.silu_backward(ga.mul_(hs[:, inter:]), hs[:, :inter], grad_input=dh[:, :inter])
        g_down = _grouped_wgrad(gy, act, lay, _grad_buffer(w_down)) if need[2] else None  # (E, H, I)
        g_gate_up = _grouped_wgrad(dh, xs, lay, _grad_buffer(w_gate_up)) if need[1] else None  # (E, 2I, H)
        grad_x = None
        if need[0]:
            gxs = _grouped_mm(dh, w_gate_up, lay, go, False)  # (N, H), into go's buffer (gy is used up)
            grad_x = _bag_sum(gxs, lay)  # (T, H)
        return grad_x, g_gate_up, g_down, grad_w, None


@torch.no_grad()
def _inference(x, w_gate_up, w_down, weights, experts) -> torch.Tensor:
    """The forward without saving anything: every buffer goes back to the pool on return."""
    lay = ExpertLayout(experts, w_gate_up.shape[0], x.dtype)
    ys, _ = _experts_forward(x, w_gate_up, w_down, lay, keep=False)
    return _bag_sum(ys, lay, weights.to(x.dtype))


def moe_mlp_torch(x: torch.Tensor, w_gate_up: torch.Tensor, w_down: torch.Tensor, weights: torch.Tensor,
                  experts: torch.Tensor) -> torch.Tensor:
    """out[t] = sum_k weights[t, k] * down_e(silu(gate_e(x[t])) * up_e(x[t])), e = experts[t, k].

    x (T, H); w_gate_up (E, 2I, H) gate rows first; w_down (E, H, I); weights (T, K); experts (T, K) int64.
    Returns (T, H) in x.dtype.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, w_gate_up, w_down, weights)):
        return GroupedMoEMLP.apply(x, w_gate_up, w_down, weights, experts)
    return _inference(x, w_gate_up, w_down, weights, experts)
