"""Each shipped weights file's model card names its sha256 (a stale card misdescribes the model)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from snn_perception.runtime.checkpoint import sha256_file

WEIGHTS = Path(__file__).resolve().parents[2] / "snn_perception" / "weights"
CARDS = {
    "dhz.safetensors": "dhz.md",
    "dhz_v2.safetensors": "dhz_v2.md",
    "dhz_v3.safetensors": "dhz_v3.md",
    "spiking_unet.safetensors": "spiking_unet_suim.md",
}


@pytest.mark.parametrize(("weights", "card"), sorted(CARDS.items()))
def test_model_card_names_the_shipped_file_sha256(weights: str, card: str) -> None:
    text = (WEIGHTS / card).read_text()
    found = re.search(rf"`{re.escape(weights)}` \(sha256 prefix `([0-9a-f]{{12}})`", text)
    assert found, f"{card} does not open with `{weights}` (sha256 prefix `…`)"
    assert sha256_file(WEIGHTS / weights).startswith(found.group(1)), (
        f"{card} describes {found.group(1)}, but {weights} is {sha256_file(WEIGHTS / weights)[:12]}"
    )
