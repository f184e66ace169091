"""Bad app arguments stop with an error naming the flag before any work (no traceback from deep inside a run,
no run that 'succeeds' having trained on nothing)."""

from __future__ import annotations

import pytest
from app_helpers import load_app


@pytest.mark.parametrize(
    ("flag", "value"),
    [("ckpt_every", 0), ("log_every", 0), ("micro_batch", 0), ("grad_accum", 0), ("seq_len", 0), ("max_steps", -1),
     ("sample_every", -1)],
)
def test_pretrain_rejects_bad_values_up_front(tmp_path, flag, value):
    app = load_app("pretrain")
    args = app.Args(tokenizer=str(tmp_path / "no-tokenizer"), mixture=str(tmp_path / "no.toml"),
                    out_dir=str(tmp_path / "run"), **{flag: value})
    with pytest.raises(ValueError, match=f"--{flag} must be"):
        app.main(args)
    assert not (tmp_path / "run").exists()
