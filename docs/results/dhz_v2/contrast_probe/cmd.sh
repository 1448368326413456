#!/usr/bin/env bash
# How much of the UIEB gap is local contrast? The colour oracle with CLAHE rows (luminance only,
# clip 0.75, 1, 1.5) on every source's validation split (seed 0, 20 %, ≤ 40 pairs: the splits
# training held out); euvp_test23 is not read. Analysis only: nothing here is selected or shipped.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
out=docs/results/dhz_v2/contrast_probe
data=${1:-../shared/data}
for src in uieb_real:256 lsui_pairs:512 euvp_dark:256 ufo120_sample:256; do
  name=${src%%:*} size=${src##*:}
  .venv/bin/python tools/dhz_colour_oracle.py --data "$data/$name" --size "$size" --split val \
    --weights dhz dhz_v2 --timesteps 4 --clahe 0.75 1 1.5 --json "$out/${name}_val_$size.json" \
    > "$out/${name}_val_$size.txt"
done
# per-frame strength of local contrast, learnt on the training splits (tools/dhz_contrast_fit.py)
for clip in 1 1.5; do
  .venv/bin/python tools/dhz_contrast_fit.py --data "$data" --weights dhz_v2 --clip "$clip" \
    --json "$out/auto_contrast_clip$clip.json" > "$out/auto_contrast_clip$clip.txt"
done
