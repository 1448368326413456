"""``train dhz`` settings, each checked before any image is read (messages name the CLI flag)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from snn_perception.models.timesteps import MAX_TIMESTEPS, MIN_TIMESTEPS
from snn_perception.offline.losses import LossWeights
from snn_perception.offline.pairs import TONE_JITTER_MAX
from snn_perception.offline.run_checks import finite, require

VARIANTS = ("official", "paper")
#: channels per attention head (the published 64 channels in 8 heads); ``--dim`` keeps it
HEAD_WIDTH = 8
MIN_DIM, MAX_DIM = 64, 256


@dataclass
class TrainDhzConfig:
    data: list[str]
    out: str = "runs/dhz"
    variant: str = "official"
    #: transformer channels (the published 64; wider keeps 8 channels per head, so ``dim / 8``
    #: heads); with ``init`` of a narrower network, its weights are widened (:mod:`.widen`)
    dim: int = 64
    #: step multiplier for the entries widening adds (:class:`.widen.WidthLR`); 1: as the rest
    widen_lr: float = 1.0
    timesteps: int = 4
    crop: int = 256
    resize: int | None = 512
    scale_min: float = 1.0
    extra_water: float = 0.0
    tone_jitter: float = 0.0
    #: decay of an exponential moving average of the weights that is validated and exported
    #: instead of the raw weights (0: off; 0.99 averages over the last ~100 steps)
    ema: float = 0.0
    #: recompute activations in backward instead of storing them: less memory, slower steps
    grad_checkpoint: bool = False
    epochs: int = 100
    batch: int = 4
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.0
    val_fraction: float = 0.2
    val_size: int = 256
    seed: int = 0
    #: seed of the train/validation split alone (None: ``seed``), so runs with different
    #: ``seed``s (augmentation, order, renders) can share one validation split, e.g. to average them
    split_seed: int | None = None
    #: sampling weight of each --data folder (plus one for the --synthetic pairs when given); each
    #: epoch draws ``epoch_size`` pairs, a source's share being its weight over the sum. Empty: every
    #: pair once per epoch, as with one folder
    mix: list[float] = field(default_factory=list)
    #: square size each --data folder's pairs are resized to before cropping (0: native); empty:
    #: ``resize`` for all
    source_resize: list[int] = field(default_factory=list)
    #: pairs drawn per epoch with --mix (0: as many as there are training pairs)
    epoch_size: int = 0
    #: at most this many validation pairs per source (0: no cap); the rest of its split trains
    val_max: int = 0
    #: anytime training: the loss is the mean of the losses read out after each of these steps, from
    #: one run of the longest (empty: only after ``timesteps``); validation reports each of them
    anytime: list[int] = field(default_factory=list)
    #: each --anytime read-out's share of the loss, in the order --anytime gives them (empty: equal)
    anytime_weights: list[float] = field(default_factory=list)
    #: weight of the hinge that charges a read-out for a higher loss than the one before it
    #: (``losses.anytime_loss``); 0: off
    monotone: float = 0.0
    #: where that hinge acts: on the batch's mean losses (``batch``) or on every image's (``image``:
    #: a source whose images get worse with T is charged even when the batch's others improve)
    monotone_per: str = "batch"
    #: weight of ``losses.consistency_loss`` (earlier read-outs pulled toward the longest's image,
    #: which learns nothing from it); 0: off
    consistency: float = 0.0
    #: ``normalized`` (a weighted mean at every step; needed for anytime) or the published ``leaky``
    readout: str = "leaky"
    synthetic: int = 0
    #: synthetic pairs rendered from the *validation* references and added to the validation
    #: set, so model selection also rewards undoing waters the real validation pairs lack
    synthetic_val: int = 0
    #: folders of good-looking images to render synthetic pairs from (e.g. well-lit underwater
    #: footage, so the pairs look like your water); default: training references + bundled photos
    synthetic_from: list[str] = field(default_factory=list)
    init: str | None = None
    resume: str | None = None
    device: str = "auto"
    threads: int | None = None
    loss: LossWeights = field(default_factory=LossWeights)
    overwrite: bool = False  # replace an earlier run in ``out`` (otherwise refused unless resuming)
    command: str = ""

    def __post_init__(self) -> None:
        """Bad settings fail here, before any image is read (messages name the CLI flag)."""
        require(bool(self.data), "--data", self.data, "at least one folder")
        resolved = [Path(d).expanduser().resolve() for d in self.data]
        require(
            len(set(resolved)) == len(resolved),
            "--data",
            " ".join(self.data),
            "different folders (one given twice would weigh its pairs double)",
        )
        require(self.variant in VARIANTS, "--variant", self.variant, f"one of {', '.join(VARIANTS)}")
        require(
            isinstance(self.dim, int) and MIN_DIM <= self.dim <= MAX_DIM and self.dim % HEAD_WIDTH == 0,
            "--dim",
            self.dim,
            f"a multiple of {HEAD_WIDTH} from {MIN_DIM} (the published width) to {MAX_DIM}",
        )
        require(
            finite(self.widen_lr, 0.0, above=True) and (self.widen_lr == 1 or self.init is not None),
            "--widen-lr",
            self.widen_lr,
            "a finite number above 0, used with --init weights narrower than --dim (1: off)",
        )
        require(
            MIN_TIMESTEPS <= self.timesteps <= MAX_TIMESTEPS,
            "--timesteps",
            self.timesteps,
            "between 1 and 64",
        )
        require(self.crop >= 8 and self.crop % 8 == 0, "--crop", self.crop, "a positive multiple of 8")
        # the transformer runs at 1/8 resolution: one 8×8 crop is a single value per channel there,
        # and BatchNorm cannot train on one value
        require(self.crop >= 16 or self.batch >= 2, "--crop", self.crop, "at least 16 with --batch 1")
        require(
            self.resize is None or self.resize >= self.crop,
            "--resize",
            self.resize,
            f"0 (native size) or at least --crop ({self.crop})",
        )
        require(finite(self.scale_min, 0.1, high=1.0), "--scale-min", self.scale_min, "in [0.1, 1]")
        require(
            finite(self.extra_water, 0.0, high=1.0),
            "--extra-water",
            self.extra_water,
            "a probability in [0, 1]",
        )
        require(
            finite(self.tone_jitter, 0.0, high=TONE_JITTER_MAX),
            "--tone-jitter",
            self.tone_jitter,
            f"in [0, {TONE_JITTER_MAX}]",
        )
        require(
            finite(self.ema, 0.0) and self.ema < 1,
            "--ema",
            self.ema,
            "0 (off) or a decay in (0, 1), e.g. 0.99",
        )
        require(self.epochs >= 1, "--epochs", self.epochs, "at least 1")
        require(self.batch >= 1, "--batch", self.batch, "at least 1")
        require(finite(self.lr, 0.0, above=True), "--lr", self.lr, "a finite number above 0, e.g. 1e-3")
        require(
            finite(self.min_lr, 0.0, high=self.lr if finite(self.lr, 0.0) else math.inf),
            "--min-lr",
            self.min_lr,
            f"a finite number in [0, --lr ({self.lr})]: the schedule decays from --lr to it",
        )
        require(finite(self.weight_decay, 0.0), "weight_decay", self.weight_decay, "a finite number ≥ 0")
        require(
            finite(self.val_fraction, 0.0) and self.val_fraction < 1,
            "--val-fraction",
            self.val_fraction,
            "in [0, 1)",
        )
        require(self.val_size >= 8, "--val-size", self.val_size, "at least 8 (pixels per side)")
        require(self.synthetic >= 0, "--synthetic", self.synthetic, "0 or more pairs")
        n_mix = len(self.data) + (1 if self.synthetic > 0 else 0)
        require(
            not self.mix or len(self.mix) == n_mix,
            "--mix",
            self.mix,
            f"{n_mix} weights: one per --data folder"
            + (" and one for --synthetic" if self.synthetic else ""),
        )
        require(
            all(finite(w, 0.0, above=True) for w in self.mix), "--mix", self.mix, "finite weights above 0"
        )
        require(
            not self.source_resize or len(self.source_resize) == len(self.data),
            "--source-resize",
            self.source_resize,
            f"{len(self.data)} sizes, one per --data folder (0: native size)",
        )
        require(
            all(r == 0 or r >= self.crop for r in self.source_resize),
            "--source-resize",
            self.source_resize,
            f"0 (native) or at least --crop ({self.crop}) each",
        )
        require(self.epoch_size >= 0, "--epoch-size", self.epoch_size, "0 (one pass) or more pairs")
        require(not self.epoch_size or self.mix, "--epoch-size", self.epoch_size, "used only with --mix")
        require(self.val_max >= 0, "--val-max", self.val_max, "0 (no cap) or more pairs per source")
        require(
            not self.val_max or self.val_fraction > 0,
            "--val-max",
            self.val_max,
            "used only with --val-fraction > 0",
        )
        require(
            all(MIN_TIMESTEPS <= t <= MAX_TIMESTEPS for t in self.anytime),
            "--anytime",
            self.anytime,
            "steps between 1 and 64",
        )
        require(
            not self.anytime or self.timesteps in self.anytime,
            "--anytime",
            self.anytime,
            f"a list that includes --timesteps ({self.timesteps}), the T the weights are selected at",
        )
        require(
            not self.anytime_weights or len(self.anytime_weights) == len(self.anytime),
            "--anytime-weights",
            self.anytime_weights,
            f"{len(self.anytime)} weights, one per --anytime step",
        )
        require(
            all(finite(w, 0.0, above=True) for w in self.anytime_weights),
            "--anytime-weights",
            self.anytime_weights,
            "finite weights above 0",
        )
        require(
            self.monotone_per in ("batch", "image"), "--monotone-per", self.monotone_per, "batch or image"
        )
        require(  # per image changes only the hinge, which --monotone 0 leaves out
            self.monotone_per == "batch" or self.monotone > 0,
            "--monotone-per",
            self.monotone_per,
            "used only with --monotone W > 0",
        )
        needs_two = "used with --anytime of two or more steps"
        for flag, weight in (("--monotone", self.monotone), ("--consistency", self.consistency)):
            # both terms compare read-outs of one run with each other
            require(finite(weight, 0.0), flag, weight, "a finite number ≥ 0")
            require(not weight or len(self.anytime) > 1, flag, weight, needs_two)
        require(self.readout in ("leaky", "normalized"), "--readout", self.readout, "leaky or normalized")
        require(
            not self.synthetic_from or self.synthetic > 0,
            "--synthetic-from",
            self.synthetic_from,
            "used only with --synthetic N > 0",
        )
        require(self.synthetic_val >= 0, "--synthetic-val", self.synthetic_val, "0 or more pairs")
        require(
            self.synthetic_val == 0 or self.val_fraction > 0,
            "--synthetic-val",
            self.synthetic_val,
            "0 when --val-fraction is 0 (it renders from the validation references)",
        )
        require(self.threads is None or self.threads >= 1, "--threads", self.threads, "at least 1")
        weights = {"--w-mse": self.loss.mse, "--w-ssim": self.loss.ssim, "--w-tv": self.loss.tv}
        for flag, w in weights.items():
            require(finite(w, 0.0), flag, w, "a finite number ≥ 0")
        if not any(w > 0 for w in weights.values()):
            raise ValueError("--w-mse, --w-ssim and --w-tv are all 0: at least one must be above 0")

    @property
    def heads(self) -> int:
        return self.dim // HEAD_WIDTH

    @property
    def val_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed
