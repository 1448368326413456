"""Widening snnTrans-DHZ's transformer: the wider network starts with exactly the narrow one's
output, can train its new channels, and loads, saves and refuses widths with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snn_perception.models import registry
from snn_perception.models.dhz import DHZConfig, SnnTransDHZ
from snn_perception.offline.train_dhz import TrainDhzConfig, load_init
from snn_perception.offline.widen import WidenError, WidthLR, widen_into
from snn_perception.runtime.checkpoint import WeightsError, load_checkpoint, save_checkpoint


def _trained_like(cfg: DHZConfig, seed: int = 0) -> SnnTransDHZ:
    """A random network whose BatchNorms hold non-trivial statistics and whose neurons fire."""
    torch.manual_seed(seed)
    model = SnnTransDHZ(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if hasattr(m, "v_threshold") and isinstance(m.v_threshold, torch.Tensor):
                m.v_threshold.fill_(0.1)
    return model.eval()


@pytest.mark.parametrize("variant", ["official", "paper"])
def test_the_widened_network_computes_exactly_what_the_narrow_one_did(variant: str) -> None:
    narrow = _trained_like(DHZConfig(variant=variant, dim=16, heads=2, readout="normalized"))
    torch.manual_seed(1)
    wide = SnnTransDHZ(DHZConfig(variant=variant, dim=24, heads=3, readout="normalized")).eval()
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = wide(x, 4)
        widen_into(narrow, wide)
        want, got = narrow(x, 4), wide(x, 4)
    assert not torch.allclose(before, want, atol=1e-3)  # a fresh wide network differs
    assert torch.equal(got, want)  # new inputs enter old channels through exact zeros
    # the new channels are alive: they spike, and what they feed gets a gradient at once
    assert wide.H_est.r_conv2_Hx.weight[16:].abs().sum() > 0
    wide.train()
    wide.forward_steps(x, (1, 2, 4)).square().mean().backward()
    into_decoder = wide.H_est.up1_Hx.weight.grad  # [2·dim inputs, ...]: r's new rows, then l's
    assert into_decoder[16:24].abs().sum() > 0 and into_decoder[40:48].abs().sum() > 0


@pytest.mark.parametrize(
    ("narrow", "wide", "match"),
    [
        (DHZConfig(dim=24, heads=3), DHZConfig(dim=16, heads=2), "at least as many channels"),
        (DHZConfig(dim=16, heads=2), DHZConfig(dim=24, heads=2), "same channels per head"),
        (DHZConfig(dim=16, heads=2), DHZConfig(dim=24, heads=3, variant="paper"), "variant"),
    ],
)
def test_widening_refuses_networks_it_cannot_map(narrow: DHZConfig, wide: DHZConfig, match: str) -> None:
    with pytest.raises(WidenError, match=match):
        widen_into(SnnTransDHZ(narrow), SnnTransDHZ(wide))


def _checkpoint(path: Path, model: SnnTransDHZ, **meta: object) -> Path:
    base = {"arch": "snntrans_dhz", "task": "dehaze", "default_timesteps": 4, "readout": "normalized"}
    save_checkpoint(path, model.state_dict(), {**base, **meta})
    return path


def test_init_from_narrower_weights_widens_them_and_wider_weights_are_refused(tmp_path: Path) -> None:
    narrow = _trained_like(DHZConfig(readout="normalized"))
    path = _checkpoint(tmp_path / "narrow.safetensors", narrow)  # no "dim": the published 64
    cfg = TrainDhzConfig(data=["a"], dim=96, readout="normalized")
    wide = registry.build("snntrans_dhz", {"readout": "normalized", "dim": cfg.dim, "heads": cfg.heads})
    load_init(wide, str(path))
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(wide.eval()(x, 4), narrow(x, 4))
    wide_path = _checkpoint(tmp_path / "wide.safetensors", wide, dim=96, heads=12)
    ckpt = load_checkpoint(wide_path)  # a wide checkpoint builds and loads from its metadata
    assert registry.build("snntrans_dhz", ckpt.metadata).cfg.dim == 96
    with pytest.raises(WeightsError, match="wider than --dim 64; give --dim 96"):
        load_init(SnnTransDHZ(DHZConfig(readout="normalized")), str(wide_path))


def test_the_masks_mark_exactly_the_entries_widening_added() -> None:
    narrow = _trained_like(DHZConfig(dim=16, heads=2))
    wide = SnnTransDHZ(DHZConfig(dim=24, heads=3))
    added = widen_into(narrow, wide)
    old = dict(narrow.named_parameters())
    for name, p in wide.named_parameters():
        if name not in added:  # unchanged shape: a plain copy
            assert p.shape == old[name].shape and torch.equal(p, old[name]), name
            continue
        mask = added[name]
        assert mask.shape == p.shape and mask.sum() == p.numel() - old[name].numel(), name
        # the entries not marked are the old weights, in their old order (block by block for up1)
        assert torch.equal(p[~mask], old[name].flatten()) or name == "H_est.up1_Hx.weight", name
    up1 = wide.H_est.up1_Hx.weight
    assert torch.equal(up1[:16], narrow.H_est.up1_Hx.weight[:16]) and torch.equal(
        up1[24:40], narrow.H_est.up1_Hx.weight[16:]
    )
    assert added["H_est.up1_Hx.weight"][16:24].all() and not added["H_est.up1_Hx.weight"][24:40].any()
    assert "H_est.r_conv1_Hx.weight" not in added  # 16 → 32 channels: not the transformer's width


def test_width_lr_scales_the_step_of_the_added_entries_only() -> None:
    p = torch.nn.Parameter(torch.zeros(4))
    model = torch.nn.Module()
    model.p = p
    mask = torch.tensor([False, True, False, True])
    opt = torch.optim.SGD([p], lr=0.1)
    p.grad = torch.ones(4)
    WidthLR(model, {"p": mask}, 5.0).step(opt)
    assert torch.allclose(p.detach(), torch.tensor([-0.1, -0.5, -0.1, -0.5]))
    p.grad = torch.ones(4)
    WidthLR(model, {"p": mask}, 1.0).step(opt)  # 1: the optimiser's own step
    assert torch.allclose(p.detach(), torch.tensor([-0.2, -0.6, -0.2, -0.6]))


def test_widen_lr_needs_weights_to_widen(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--widen-lr"):
        TrainDhzConfig(data=["a"], widen_lr=4.0)  # no --init
    same = _checkpoint(tmp_path / "same.safetensors", _trained_like(DHZConfig(readout="normalized")))
    assert load_init(SnnTransDHZ(DHZConfig(readout="normalized")), str(same)) is None  # nothing added


@pytest.mark.parametrize("dim", [60, 72.0, 264, True])
def test_train_dim_must_be_a_multiple_of_8_from_64_to_256(dim: object) -> None:
    with pytest.raises(ValueError, match="--dim"):
        TrainDhzConfig(data=["a"], dim=dim)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("meta", "match"), [({"dim": "96"}, "dim must be"), ({"dim": 96, "heads": 7}, "divisible")]
)
def test_bad_width_metadata_is_a_clear_error(meta: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        registry.build("snntrans_dhz", meta)
