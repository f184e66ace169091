"""The CPU buffer pool of the expert MLP: a buffer is handed out again only once nobody holds it."""

import torch

import jpmoe.kernels.moe_mlp_torch as gm
import jpmoe.kernels.moe_mlp_torch_workspace as cw
from jpmoe.kernels.moe_mlp import moe_mlp_reference


def test_buffer_in_use_is_not_handed_out_and_a_dropped_one_is_reused(monkeypatch):
    monkeypatch.setattr(cw, "MIN_POOLED_BYTES", 0)
    ws = cw.Workspace()
    a = ws.empty((10, 4), torch.float32, torch.device("cpu"))
    view = a[2:]  # a view keeps the storage taken
    del a
    b = ws.empty((10, 4), torch.float32, torch.device("cpu"))
    assert b.data_ptr() != view.data_ptr() - 2 * 4 * 4
    ptr = b.data_ptr()
    del b
    c = ws.empty((9, 8), torch.bfloat16, torch.device("cpu"))  # smaller request, other dtype: same storage
    assert c.data_ptr() == ptr and c.shape == (9, 8) and c.dtype == torch.bfloat16
    assert ws.empty((1000,), torch.float32, torch.device("cpu")).data_ptr() not in (ptr, view.data_ptr())
    ws.release()
    assert ws.pooled_bytes() == 0


def test_saved_activations_and_kept_gradients_survive_other_calls(monkeypatch):
    """Two forwards before their backwards (as two layers do), retain_graph, and gradients accumulated into
    .grad across steps: pooled buffers still held by autograd or by .grad must never be overwritten."""
    monkeypatch.setattr(cw, "MIN_POOLED_BYTES", 0)
    monkeypatch.setattr(gm, "WORKSPACE", cw.Workspace())
    g = torch.Generator().manual_seed(0)
    E, K, H, inter = 4, 2, 16, 12
    wgu = (torch.randn(E, 2 * inter, H, generator=g) * 0.2).requires_grad_()
    wd = (torch.randn(E, H, inter, generator=g) * 0.2).requires_grad_()
    xs = [torch.randn(30, H, generator=g) for _ in range(2)]
    routes = [torch.randn(30, E, generator=g).softmax(-1).topk(K, -1) for _ in range(2)]
    grads = [torch.randn(30, H, generator=g) for _ in range(2)]

    def expected():
        wgu_r, wd_r = wgu.detach().clone().requires_grad_(), wd.detach().clone().requires_grad_()
        for x, (w, e), go in zip(xs, routes, grads):
            moe_mlp_reference(x, wgu_r, wd_r, w, e).backward(go)
        return wgu_r.grad, wd_r.grad

    outs = [gm.moe_mlp_torch(x, wgu, wd, w, e) for x, (w, e) in zip(xs, routes)]  # both saved at once
    outs[1].backward(grads[1], retain_graph=True)
    outs[0].backward(grads[0])
    want_gu, want_d = expected()
    torch.testing.assert_close(wgu.grad, want_gu, atol=1e-5, rtol=1e-5)
    wgu.grad, wd.grad = None, None
    outs[1].backward(grads[1])  # retained graph, after other calls took buffers from the pool
    outs[0] = gm.moe_mlp_torch(xs[0], wgu, wd, *routes[0])
    outs[0].backward(grads[0])  # accumulates into the .grad the previous backward left
    torch.testing.assert_close(wgu.grad, want_gu, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(wd.grad, want_d, atol=1e-5, rtol=1e-5)
