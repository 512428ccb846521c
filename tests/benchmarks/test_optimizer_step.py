"""The optimiser-step benchmark: every implementation takes the same step, and a tiny run writes its table."""

from __future__ import annotations

import functools

import pytest
import torch

pytest.importorskip("stable_baselines3")

from benchmarks import optimizer_step


@pytest.fixture(autouse=True)
def eager_compile(monkeypatch):
    """torch.compile with Dynamo's ``eager`` backend: the graph capture without minutes of C++ code generation."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()


def test_every_implementation_takes_the_same_step():
    args = optimizer_step.Args(sac_hidden_dim=8)
    for case, (optimizer_class, options, params) in optimizer_step.trained_parameters(args).items():
        stepped = []
        for variant in optimizer_step.VARIANTS:
            step, copies = optimizer_step.step_function(optimizer_class, options, params, variant)
            for _ in range(3):
                step()
            stepped.append(copies)
        assert not any(torch.equal(a, p) for a, p in zip(stepped[0], params, strict=True)), case  # it moved
        for variant, copies in zip(optimizer_step.VARIANTS[1:], stepped[1:], strict=True):
            for got, want in zip(copies, stepped[0], strict=True):
                torch.testing.assert_close(got, want, msg=f"{case}: {variant}")


def test_a_tiny_run_writes_every_implementation_with_its_ratio(tmp_path):
    argv = ["--sac-hidden-dim", "8", "--rounds", "2", "--steps-per-block", "1", "--results-dir", str(tmp_path)]
    optimizer_step.main(argv)
    text = (tmp_path / "steps.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "tensors" in line]
    assert len(rows) == 2 * len(optimizer_step.VARIANTS)
    assert all(line.count("| per-tensor loop |") == 1 for line in rows[:: len(optimizer_step.VARIANTS)])
    assert "**Command:** `python -m benchmarks.optimizer_step --sac-hidden-dim 8" in text
    with pytest.raises(SystemExit, match="--overwrite"):
        optimizer_step.main(argv)


@pytest.mark.parametrize(("flags", "named"), [(["--rounds", "0"], "--rounds"), (["--shape", "x"], "--shape")])
def test_bad_flags_are_refused_by_name(flags, named, tmp_path):
    with pytest.raises(SystemExit, match=named):
        optimizer_step.main([*flags, "--results-dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())
