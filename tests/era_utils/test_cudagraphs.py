"""CudaGraphFunction: every call runs the step once on its own inputs, whether eager (warm-up) or replayed."""

from __future__ import annotations

import pytest
import torch

from era_utils.cudagraphs import CudaGraphFunction
from tests.conftest import requires_cuda


def test_rejects_cpu_tensors_and_no_warmup():
    with pytest.raises(ValueError, match="warmup"):
        CudaGraphFunction(lambda x: x, warmup=0)
    with pytest.raises(ValueError, match="CUDA tensors"):
        CudaGraphFunction(lambda x: x)(torch.zeros(2))


@pytest.mark.gpu
@requires_cuda
def test_captured_training_step_equals_eager_steps():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, device="cuda")
    twin = torch.nn.Linear(4, 1, device="cuda")
    twin.load_state_dict(model.state_dict())

    def make_step(net):
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2, capturable=True)

        def step(x, y):
            loss = torch.nn.functional.mse_loss(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"loss": loss.detach()}

        return step

    captured, eager = CudaGraphFunction(make_step(model), warmup=2), make_step(twin)
    for call in range(6):  # 2 warm-up calls, the capture, 3 replays
        x, y = torch.randn(8, 4, device="cuda"), torch.randn(8, 1, device="cuda")
        torch.testing.assert_close(captured(x, y)["loss"], eager(x, y)["loss"], msg=f"call {call}")
    assert captured.graph is not None
    torch.testing.assert_close(model.weight, twin.weight)
