"""Gradient checkpointing: bit-identical outputs, gradients and BatchNorm statistics, far less stored."""

from __future__ import annotations

import pytest
import torch

from snn_perception.models.dhz import DHZConfig, SnnTransDHZ


def _pair(variant: str, reset: str) -> tuple[SnnTransDHZ, SnnTransDHZ]:
    torch.manual_seed(0)
    plain = SnnTransDHZ(DHZConfig(variant=variant, reset=reset)).train()
    with torch.no_grad():  # low thresholds: every layer spikes, so every surrogate path carries gradient
        for name, p in plain.named_parameters():
            if name.endswith("v_threshold"):
                p.fill_(0.05)
    checked = SnnTransDHZ(DHZConfig(variant=variant, reset=reset)).train()
    checked.load_state_dict(plain.state_dict())
    checked.set_grad_checkpointing(True)
    return plain, checked


def _saved_bytes(model: SnnTransDHZ, x: torch.Tensor, timesteps: int) -> tuple[torch.Tensor, int]:
    """Output and the bytes autograd keeps for the backward pass (outside checkpointed stages)."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, timesteps)
    return out, total


@pytest.mark.parametrize(("variant", "reset"), [("official", "none"), ("paper", "subtract")])
def test_checkpointing_changes_memory_not_results(variant: str, reset: str) -> None:
    plain, checked = _pair(variant, reset)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    target = torch.rand_like(x)
    out_plain, stored_plain = _saved_bytes(plain, x, 3)
    out_checked, stored_checked = _saved_bytes(checked, x, 3)
    torch.testing.assert_close(out_checked, out_plain, rtol=0, atol=0)
    assert stored_checked < stored_plain / 4, (stored_checked, stored_plain)
    for out in (out_plain, out_checked):
        torch.nn.functional.mse_loss(out, target).backward()
    grads = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
    assert any(n.endswith("v_threshold") for n in grads) and len(grads) > 100
    for name, p in checked.named_parameters():
        if name in grads:
            torch.testing.assert_close(p.grad, grads[name], rtol=0, atol=0, msg=name)
        else:
            assert p.grad is None, f"{name}: gradient only with checkpointing"
    # the recomputation must not count the batch a second time in BatchNorm's running statistics
    for (name, a), b in zip(plain.state_dict().items(), checked.state_dict().values(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)


def test_checkpointing_is_off_in_eval_and_under_no_grad() -> None:
    _, checked = _pair("official", "none")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        _, stored = _saved_bytes(checked, x, 2)
    assert stored == 0
    checked.eval()
    out, _ = _saved_bytes(checked, x, 2)
    assert out.requires_grad  # plain autograd, no checkpoint wrapper, in eval mode
