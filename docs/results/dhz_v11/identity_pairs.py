"""Builds the identity source of dhz_v11 (#17): raw/ and reference/ both link to the same clean image,
every *training-split* reference of the four sources (the recipe's split: seed 0, fraction 0.2, at most
40 validation pairs per source), so no validation reference is seen. Links only: nothing is copied.

    python identity_pairs.py SHARED_DATA OUT_FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from snn_perception.offline.dhz_mix import split_sources

SOURCES = ("lsui_pairs", "euvp_dark", "uieb_real", "ufo120_sample")


def main(data: Path, out: Path) -> None:
    splits = split_sources([str(data / s) for s in SOURCES], [1.0] * 4, [None] * 4, 0.2, 40, 0)
    for sub in ("raw", "reference"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for src in splits:
        val_refs = {ref.resolve() for _, ref in src.val}
        for _, ref in src.train:
            assert ref.resolve() not in val_refs
            name = f"{src.name}__{ref.name}"
            for sub in ("raw", "reference"):
                link = out / sub / name
                if not link.exists():
                    link.symlink_to(ref.resolve())
            n += 1
        print(f"{src.name}: {len(src.train)} training references linked, {len(src.val)} validation left out")
    print(f"{n} identity pairs in {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
