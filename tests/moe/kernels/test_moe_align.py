import pytest
import torch
from kernel_cases import DEVICE

from jpmoe.kernels.moe_align import max_blocks, moe_align, moe_align_reference


def _cases(gen):
    yield torch.tensor([[2]]), 4  # one token, k = 1
    yield torch.randint(0, 5, (13, 3), generator=gen), 5  # odd sizes
    yield torch.full((9, 2), 3), 6  # every pair to one expert; the others get nothing
    yield torch.tensor([[0, 2], [2, 0], [0, 2]]), 3  # expert 1 receives no token
    yield torch.randint(0, 70, (40, 8), generator=gen), 70  # E > 64: a wider one-hot, many small groups


@pytest.mark.parametrize("block_m", [16, 32])
def test_align_matches_reference_exactly(block_m, gen):
    for experts, E in _cases(gen):
        experts = experts.to(DEVICE)
        got = moe_align(experts, E, block_m)
        want = moe_align_reference(experts, E, block_m)
        for g, w, name in zip(got, want, ("sorted_pairs", "block_expert", "expert_offsets")):
            assert torch.equal(g.cpu(), w.cpu()), (name, experts.shape, E)


def test_align_reference_invariants(gen):
    experts = torch.randint(0, 6, (11, 2), generator=gen)
    experts[:, :] = torch.where(experts == 4, 5, experts)  # expert 4 empty
    sorted_pairs, block_expert, offsets = moe_align_reference(experts, 6, 16)
    P = experts.numel()
    assert sorted_pairs.numel() == max_blocks(P, 6, 16) * 16
    real = sorted_pairs[sorted_pairs < P]
    assert torch.equal(real.sort().values, torch.arange(P, dtype=torch.int32))  # every pair exactly once
    for e in range(6):
        lo, hi = offsets[e].item(), offsets[e + 1].item()
        assert lo % 16 == 0 and hi % 16 == 0
        ids = sorted_pairs[lo:hi]
        ids = ids[ids < P].long()
        assert torch.all(experts.reshape(-1)[ids] == e) and torch.all(ids.diff() > 0)  # stable order
        assert torch.all(block_expert[lo // 16 : hi // 16] == e)
    assert offsets[4] == offsets[5]  # the empty expert owns no block
    assert torch.all(block_expert[offsets[-1] // 16 :] == -1)


def test_align_rejects_expert_ids_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        moe_align(torch.tensor([[0, 4]], device=DEVICE), 4, 16)
    with pytest.raises(ValueError, match="outside"):
        moe_align(torch.tensor([[-1, 0]], device=DEVICE), 4, 16)
