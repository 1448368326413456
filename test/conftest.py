"""Suite-wide switches: slow tests, the ../shared material, ROS isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``../shared`` beside the repo (CI and developers), or ``$SNN_SHARED_DIR``."""
    return Path(os.environ.get("SNN_SHARED_DIR", REPO.parent / "shared")).resolve()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow (training, floods)")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("cuda" in item.keywords for item in items) and not _cuda_available():
        no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (none here; CI has none)")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(no_gpu)
    if config.getoption("--runslow") or os.environ.get("SNN_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow test: run with --runslow or SNN_RUN_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared data folder; skips the test with a reason when it is absent."""
    path = shared_dir()
    if not (path / "data").is_dir():
        pytest.skip(f"../shared is absent ({path}): this test needs the project's shared data")
    return path
