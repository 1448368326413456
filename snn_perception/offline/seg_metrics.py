"""Segmentation scores from one confusion matrix: mIoU, per-class IoU, pixel accuracy, F1.

The package's one confusion matrix: :class:`ConfusionMatrix` (accumulated over a split by the
trainers and ``evaluate``) and :func:`confusion_matrix` (one mask pair, for replay) share its
rule, a pixel counts only when both its reference and its prediction are class ids.

Accumulating a confusion matrix over the whole split (rather than averaging per-image IoU) is the
convention of the SUIM and Cityscapes benchmarks; classes absent from both the labels and the
predictions have no defined IoU and are left out of the mean (reported as NaN → null in JSON).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class ConfusionMatrix:
    num_classes: int
    ignore_index: int = 255
    matrix: np.ndarray = field(init=False)  # [true, pred]

    def __post_init__(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> None:
        """``pred`` and ``target``: integer class ids of the same shape (any batch layout)."""
        pred_t = torch.as_tensor(pred).reshape(-1).long()
        target_t = torch.as_tensor(target).reshape(-1).long()
        if pred_t.shape != target_t.shape:
            raise ValueError(f"prediction has {pred_t.numel()} pixels but target has {target_t.numel()}")
        # a pixel counts only when both ids are classes (255 and other out-of-range ids: ignored)
        n = self.num_classes
        keep = (target_t >= 0) & (target_t < n) & (pred_t >= 0) & (pred_t < n)
        idx = target_t[keep] * n + pred_t[keep]
        counts = torch.bincount(idx, minlength=self.num_classes**2)
        self.matrix += counts.reshape(self.num_classes, self.num_classes).cpu().numpy()

    def scores(self, class_names: tuple[str, ...] | list[str] | None = None) -> dict:
        return scores_from_confusion(self.matrix, class_names)


def confusion_matrix(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """``[target, pred]`` pixel counts of one mask pair (:class:`ConfusionMatrix`'s rule)."""
    if pred.shape != target.shape:
        raise ValueError(f"mask shapes differ: prediction {pred.shape}, reference {target.shape}")
    cm = ConfusionMatrix(num_classes)
    cm.update(np.asarray(pred, dtype=np.int64), np.asarray(target, dtype=np.int64))
    return cm.matrix


def miou(conf: np.ndarray) -> float:
    """Mean IoU over the classes present in the reference or the prediction (others are ignored)."""
    return scores_from_confusion(conf)["miou"]


def _nan_to_none(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def scores_from_confusion(matrix: np.ndarray, class_names=None) -> dict:
    m = matrix.astype(np.float64)
    tp = np.diag(m)
    fp = m.sum(0) - tp
    fn = m.sum(1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (tp + fp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    total = m.sum()
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(tp))]
    return {
        "miou": float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan"),
        "mean_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else float("nan"),
        "pixel_acc": float(tp.sum() / total) if total else float("nan"),
        "per_class_iou": {n: _nan_to_none(v) for n, v in zip(names, iou, strict=True)},
        "per_class_f1": {n: _nan_to_none(v) for n, v in zip(names, f1, strict=True)},
        "pixels": int(total),
    }
