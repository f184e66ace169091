import pytest
import torch
from kernel_cases import DEVICE, DTYPES, randn

from jpmoe.kernels.routing import route, route_reference

CASES = [(1, 4, 1), (7, 5, 2), (13, 8, 3), (33, 70, 8)]  # (T, E, K): 1 token; odd E; E > 64 (wide tile), K = 8


@pytest.mark.parametrize("T, E, K", CASES)
@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
def test_route_matches_reference_in_ids_weights_and_logit_grads(T, E, K, renormalize, dtype, gen):
    logits = randn((T, E), dtype, gen, scale=2.0, grad=True)
    w, ex = route(logits, K, renormalize=renormalize)
    ref_logits = logits.detach().clone().requires_grad_()
    rw, rex = route_reference(ref_logits, K, renormalize=renormalize)
    assert ex.dtype == torch.int64 and w.dtype == torch.float32
    # the same logits in the same (descending) order; within a run of tied logits (frequent in bf16 at E=70) ours
    # lists the lower expert id first while torch.topk on CUDA does not promise any order, so ids may differ there
    assert torch.equal(logits.detach().gather(1, ex), logits.detach().gather(1, rex))
    tied = logits.detach().gather(1, ex[:, 1:]) == logits.detach().gather(1, ex[:, :-1])
    assert bool((ex[:, 1:] > ex[:, :-1])[tied].all())
    unique = (logits.detach().unsqueeze(2) == logits.detach().gather(1, ex).unsqueeze(1)).sum(1) == 1  # (T, K)
    assert torch.equal(ex[unique], rex[unique])
    torch.testing.assert_close(w, rw, atol=1e-6, rtol=1e-5)  # both softmax in fp32
    g = randn((T, E), torch.float32, gen)  # d loss / d weight of each expert: invariant to the order of tied ids
    (got,) = torch.autograd.grad(w, logits, g.gather(1, ex))
    (want,) = torch.autograd.grad(rw, ref_logits, g.gather(1, rex))
    same = (ex.sort(1).values == rex.sort(1).values).all(1)  # rows whose K-th and (K+1)-th logits tie may differ
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(got[same], want[same], **tol)


def test_route_breaks_ties_toward_the_lower_expert_id():
    logits = torch.tensor([[0.0, 1.0, 1.0, 0.5]], device=DEVICE)
    w, ex = route(logits, 2)
    assert ex.tolist() == [[1, 2]]
    torch.testing.assert_close(w, torch.tensor([[0.5, 0.5]], device=DEVICE))


def test_route_rejects_bad_k():
    with pytest.raises(ValueError, match="0 < k <= E"):
        route(torch.zeros(3, 4, device=DEVICE), 5)
