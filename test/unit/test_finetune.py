"""Fine-tuning by accumulated spiking flow, and denoising mode end to end."""

import torch

from snn_perception.models.unet import UNet, UNetConfig
from snn_perception.offline.convert import ConvertConfig, calibrate, convert, fold_batchnorm
from snn_perception.offline.finetune import FinetuneConfig, evaluate_snn_denoise, finetune, flow_loss
from snn_perception.offline.train_unet import add_noise


def converted(head="segment", classes=3, seed=0):
    torch.manual_seed(seed)
    ann = fold_batchnorm(UNet(UNetConfig(width=4, num_classes=classes, head=head)).eval())
    cfg = ConvertConfig()
    return convert(ann, calibrate(ann, [torch.rand(4, 3, 32, 32)], cfg), cfg)


def test_flow_forward_value_is_the_snn_prediction():
    snn = converted()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(snn.flow_forward(x, 3), snn(x, 3), atol=1e-5)


def test_finetuning_lowers_the_loss_on_a_small_batch():
    snn = converted()
    torch.manual_seed(3)
    x, y = torch.rand(4, 3, 32, 32), torch.randint(0, 3, (4, 32, 32))
    cfg = FinetuneConfig(timesteps=4)
    opt = torch.optim.Adam(snn.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = flow_loss(snn, x, y, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        final = float(torch.nn.functional.cross_entropy(snn(x, 4), y))
    assert final < losses[0] - 0.02, (losses[0], final)


def test_autograd_memory_does_not_grow_with_t():
    """The differentiable pass saves the same tensors whatever T (only the no-grad run sees T)."""
    snn = converted()
    x = torch.rand(1, 3, 32, 32)
    saved = {}
    for t in (2, 16):
        n = []

        def pack(s, n=n):
            n.append(s.numel())
            return s

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda s: s):
            snn.flow_forward(x, t).sum()
        saved[t] = sum(n)
    assert saved[2] == saved[16]


class _Images(torch.utils.data.Dataset):
    def __init__(self, n=8):
        torch.manual_seed(0)
        base = torch.rand(n, 3, 1, 1)
        self.x = (base + 0.1 * torch.rand(n, 3, 32, 32)).clamp(0, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.x[i]


def test_denoising_mode_runs_end_to_end():
    torch.manual_seed(0)
    ann = UNet(UNetConfig(width=4, head="denoise"))
    data = _Images()
    opt = torch.optim.Adam(ann.parameters(), lr=3e-3)
    for _ in range(5):  # a few ANN steps so conversion starts from trained-ish weights
        x = data.x
        loss = torch.nn.functional.l1_loss(ann(add_noise(x, 50.0)), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    folded = fold_batchnorm(ann.eval())
    cfg = ConvertConfig()
    snn = convert(folded, calibrate(folded, [add_noise(data.x, 50.0)], cfg), cfg)
    history = finetune(snn, data, FinetuneConfig(timesteps=4, epochs=2, lr=1e-3, batch=4), log=lambda _: None)
    assert len(history) == 2 and all(h["loss"] > 0 for h in history)
    scores = evaluate_snn_denoise(snn, list(data.x[:2]), [2, 4], sigma=25.0)
    assert set(scores) == {2, 4}
    assert all(5.0 < s["psnr"] < 60.0 and -1.0 <= s["ssim"] <= 1.0 for s in scores.values())
    with torch.no_grad():
        noisy = data.x[:1] + 0.1
        assert snn(noisy, 4).shape == noisy.shape
