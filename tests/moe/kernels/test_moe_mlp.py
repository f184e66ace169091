import pytest
import torch
from kernel_cases import DEVICE, DTYPES, randn

from jpmoe.kernels.moe_mlp import moe_mlp, moe_mlp_reference

# fp16: values of order 1 summed over up to ~50 products and two GEMMs, each rounded to fp16 once.
MOE_TOL = {
    torch.float32: dict(atol=1e-4, rtol=1e-4),
    torch.float16: dict(atol=1e-2, rtol=1e-2),
    torch.bfloat16: dict(atol=5e-2, rtol=5e-2),
}


def _experts(kind: str, T: int, E: int, K: int, gen) -> torch.Tensor:
    if kind == "random":  # K distinct experts per token, as top-k gives
        return torch.rand((T, E), generator=gen).argsort(dim=1)[:, :K]
    if kind == "one_expert":  # every token's first choice is expert 1; the rest never receive a token but one
        return torch.stack([torch.ones(T, dtype=torch.long)] + [torch.full((T,), 2)] * (K - 1), 1)[:, :K]
    if kind == "empty_expert":  # expert 0 receives nothing
        return 1 + torch.rand((T, E - 1), generator=gen).argsort(dim=1)[:, :K]
    raise ValueError(kind)


CASES = [  # (T, E, K, H, I, experts)
    (1, 4, 2, 24, 40, "random"),  # one token
    (13, 5, 3, 40, 48, "random"),  # non-powers of two; H and I cross the 32-wide tiles
    (9, 4, 1, 16, 16, "one_expert"),  # k = 1, every token to one expert
    (11, 6, 2, 33, 20, "one_expert"),
    (10, 5, 2, 24, 24, "empty_expert"),
]


def _inputs(T, E, K, H, inter, kind, dtype, gen):
    x = randn((T, H), dtype, gen, grad=True)
    w_gu = randn((E, 2 * inter, H), dtype, gen, scale=H**-0.5, grad=True)
    w_down = randn((E, H, inter), dtype, gen, scale=inter**-0.5, grad=True)
    weights = torch.rand((T, K), generator=gen).to(DEVICE).requires_grad_()  # fp32, as routing returns
    experts = _experts(kind, T, E, K, gen).to(DEVICE)
    return x, w_gu, w_down, weights, experts


@pytest.mark.parametrize("T, E, K, H, inter, kind", CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_moe_mlp_forward_and_all_grads_match_reference(T, E, K, H, inter, kind, dtype, gen):
    x, w_gu, w_down, weights, experts = _inputs(T, E, K, H, inter, kind, dtype, gen)
    out = moe_mlp(x, w_gu, w_down, weights, experts)
    leaves = [t.detach().float().requires_grad_() for t in (x, w_gu, w_down, weights)]
    ref = moe_mlp_reference(*leaves, experts)  # fp32 oracle
    tol = MOE_TOL[dtype]
    torch.testing.assert_close(out, ref.to(dtype), **tol)
    dout = randn((T, H), dtype, gen)
    got = torch.autograd.grad(out, (x, w_gu, w_down, weights), dout)
    want = torch.autograd.grad(ref, leaves, dout.float())
    for name, g, w in zip(("x", "w_gate_up", "w_down", "weights"), got, want):
        assert g.dtype == (torch.float32 if name == "weights" else dtype), name
        torch.testing.assert_close(g.float(), w, **tol, msg=lambda m, n=name: f"d {n}: {m}")


def test_moe_mlp_gradients_of_an_unused_expert_are_exact_zeros(gen):
    x, w_gu, w_down, weights, experts = _inputs(10, 5, 2, 24, 24, "empty_expert", torch.float32, gen)
    out = moe_mlp(x, w_gu, w_down, weights, experts)
    d_gu, d_down = torch.autograd.grad(out.sum(), (w_gu, w_down))
    assert torch.all(d_gu[0] == 0) and torch.all(d_down[0] == 0)  # poisoned buffers: written, and written as 0
    assert d_gu[1:].abs().sum() > 0


def test_moe_mlp_without_grad_matches_reference(gen):
    x, w_gu, w_down, weights, experts = _inputs(7, 3, 2, 20, 36, "random", torch.float16, gen)
    with torch.no_grad():
        out = moe_mlp(x, w_gu, w_down, weights, experts)
        ref = moe_mlp_reference(x.float(), w_gu.float(), w_down.float(), weights, experts)
    torch.testing.assert_close(out, ref.half(), **MOE_TOL[torch.float16])


def test_moe_mlp_rejects_bad_inputs(gen):
    x, w_gu, w_down, weights, experts = _inputs(3, 4, 2, 16, 16, "random", torch.float32, gen)
    with pytest.raises(ValueError, match="outside"):
        moe_mlp(x, w_gu, w_down, weights, experts + 4)
    with pytest.raises(ValueError, match="w_gate_up"):
        moe_mlp(x, w_gu[:, :-1], w_down, weights, experts)
    with pytest.raises(ValueError, match="both be"):
        moe_mlp(x, w_gu, w_down, weights[:, :1], experts)
    with pytest.raises(ValueError, match="share a dtype"):
        moe_mlp(x, w_gu.half(), w_down, weights, experts)


def test_moe_mlp_is_bitwise_deterministic(gen):
    """No atomics in the float path: two runs give identical outputs and gradients (also on GPU)."""
    x, w_gu, w_down, weights, experts = _inputs(12, 4, 2, 24, 40, "random", torch.float32, gen)
    dout = randn((12, 24), torch.float32, gen)
    runs = []
    for _ in range(2):
        out = moe_mlp(x, w_gu, w_down, weights, experts)
        runs.append((out, *torch.autograd.grad(out, (x, w_gu, w_down, weights), dout)))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


def test_tile_table_classes_and_fp32_rule(monkeypatch):
    from jpmoe.kernels import tiling

    monkeypatch.setattr(tiling, "interpreting", lambda: False)  # the GPU table, as on CUDA
    assert tiling.moe_tiles(8 * 64, 8, torch.bfloat16) is tiling.GPU_TABLE[0][1]  # 64 rows/expert: decode-like
    assert tiling.moe_tiles(128 * 300, 128, torch.bfloat16) is tiling.GPU_TABLE[1][1]  # 300 rows per expert
    big, big32 = tiling.moe_tiles(2 * 32768, 8, torch.bfloat16), tiling.moe_tiles(2 * 32768, 8, torch.float32)
    assert big is tiling.GPU_TABLE[2][1] and big32.block_m == big.block_m
    assert big32.scatter.block_k == big.scatter.block_k // 2 and big32.gate_up.block_n == big.gate_up.block_n // 2

    rows = [bound for bound, _ in tiling.GPU_TABLE]
    assert rows == sorted(rows) and rows[-1] == float("inf")  # every row count finds a class
    for _, tiles in tiling.GPU_TABLE:
        blocks = {t.block_m for t in (tiles.gate_up, tiles.scatter, tiles.down_bwd)}
        assert blocks == {tiles.block_m}  # one sorted layout serves every GEMM of the layer
        assert all(t.block_m >= 16 and t.block_n >= 16 and t.block_k >= 16 for t in (tiles.gate_up, tiles.dw))


@pytest.mark.parametrize("rows_per_expert", [64, 512, 4096])  # one per GPU table row
def test_every_gpu_table_row_runs_correctly(rows_per_expert, gen, monkeypatch):
    """The tiles of every GPU table row (fp32 variant: the interpreter's dtype), not only the interpreter's 16-row
    tiles: block_m 32/128, group_m 1/8 and K chunks larger than H all give the reference's output and gradients."""
    import jpmoe.kernels.moe_mlp_triton_fwd as moe_module  # the forward picks the tiles, the backward reuses them
    from jpmoe.kernels import tiling

    monkeypatch.setattr(tiling, "interpreting", lambda: False)  # moe_tiles reads the GPU table
    tiles = tiling.moe_tiles(rows_per_expert * 3, 3, torch.float32)
    assert tiles.block_m in (32, 128) and tiles != tiling.INTERPRETER_TILES
    monkeypatch.setattr(moe_module, "moe_tiles", lambda *a: tiles)
    x, w_gu, w_down, weights, experts = _inputs(11, 3, 2, 40, 48, "random", torch.float32, gen)
    out = moe_mlp(x, w_gu, w_down, weights, experts)
    leaves = [t.detach().requires_grad_() for t in (x, w_gu, w_down, weights)]
    ref = moe_mlp_reference(*leaves, experts)
    torch.testing.assert_close(out, ref, **MOE_TOL[torch.float32])
    dout = randn((11, 40), torch.float32, gen)
    for g, w in zip(torch.autograd.grad(out, (x, w_gu, w_down, weights), dout),
                    torch.autograd.grad(ref, leaves, dout)):
        torch.testing.assert_close(g, w, **MOE_TOL[torch.float32])
