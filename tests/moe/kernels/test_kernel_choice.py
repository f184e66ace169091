"""One kernel decision: "auto" is resolved once, when the model is built, into the one name the model carries;
every op call then runs that path's entry, with no check and no second decision inside."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from kernel_cases import DEVICE

import jpmoe.kernels.backend as backend
import jpmoe.kernels.dispatch as dispatch
from jpmoe import ModelConfig
from jpmoe.kernels.dispatch import KERNELS, resolve_kernels
from jpmoe.model import Transformer


def test_auto_resolves_by_device_and_whether_triton_runs(monkeypatch):
    monkeypatch.setattr(dispatch, "triton_unavailable_reason", lambda: None)
    assert resolve_kernels("auto", torch.device("cuda", 0)) == "triton"
    assert resolve_kernels("auto", "cpu") == "torch"  # even where the interpreter could run it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_kernels("auto") == "triton"  # no device: this machine's CUDA
    monkeypatch.setattr(dispatch, "triton_unavailable_reason", lambda: "the triton package is not installed")
    assert resolve_kernels("auto", "cuda") == "torch"
    assert resolve_kernels("torch", "cuda") == "torch"
    with pytest.raises(ValueError, match="kernels='triton' cannot run here: the triton package is not installed"):
        resolve_kernels("triton")
    with pytest.raises(ValueError, match=r"kernels must be one of \('auto', 'torch', 'triton'\), not 'cuda'"):
        resolve_kernels("cuda")


def _ops_of(model):
    return {m.ops for m in model.modules() if hasattr(m, "ops")}


@pytest.mark.parametrize("choice", ["auto", "torch", "triton"])
def test_the_model_carries_one_name_and_op_calls_decide_nothing(choice, monkeypatch):
    model = Transformer(ModelConfig.preset("debug", kernels=choice)).to(DEVICE)
    name = model.config.kernels
    assert name == ("triton" if choice == "triton" or (choice == "auto" and DEVICE == "cuda") else "torch")
    assert _ops_of(model) == {KERNELS[name]}  # every norm, attention, MLP and MoE layer: the same path

    def no_decision(*args, **kwargs):
        raise AssertionError("an op call made a kernel decision")

    for fn in ("use_triton", "triton_unavailable_reason"):
        monkeypatch.setattr(backend, fn, no_decision)
    monkeypatch.setattr(dispatch, "resolve_kernels", no_decision)
    monkeypatch.setattr(dispatch, "triton_unavailable_reason", no_decision)
    ids = torch.randint(0, 512, (2, 5), device=DEVICE)
    model(ids).logits.float().sum().backward()


def test_the_torch_expert_mlp_is_named_for_what_it_is(monkeypatch):
    """The "torch" path's expert MLP is the grouped CPU implementation, not the reference (which is its oracle)."""
    calls = []
    monkeypatch.setattr(dispatch, "moe_mlp_torch", lambda *args: calls.append("moe_mlp_torch"))
    monkeypatch.setattr(dispatch, "moe_mlp_triton", lambda *args: calls.append("moe_mlp_triton"))
    x, w_gu, w_down = torch.zeros(2, 4), torch.zeros(3, 6, 4), torch.zeros(3, 4, 3)
    for name in ("torch", "triton"):
        KERNELS[name].moe_mlp(x, w_gu, w_down, torch.ones(2, 1), torch.zeros(2, 1, dtype=torch.long))
    assert calls == ["moe_mlp_torch", "moe_mlp_triton"]


def test_a_model_with_its_kernel_table_still_pickles_and_copies():
    model = Transformer(ModelConfig.preset("debug"))
    buf = io.BytesIO()
    torch.save(model, buf)  # module-level functions, not closures
    assert copy.deepcopy(model).layers[0].mlp.ops == KERNELS["torch"]
