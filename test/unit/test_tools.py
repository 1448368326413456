"""The developer tools in tools/ refuse bad input in one line (exit 2) and write nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["dhz_val_loss.py", "nope.safetensors"], ["error:", "nope.safetensors"]),
        (
            ["dhz_greedy_soup.py", "a.safetensors", "b.safetensors", "--out", "a.safetensors"],
            ["error:", "also an input"],
        ),
        (["dhz_greedy_soup.py", "a.safetensors", "--out", "soup.pt"], ["error:", "must end in .safetensors"]),
        (["dhz_val_loss.py", "dhz", "--threads", "0"], ["error:", "--threads 0", "at least 1"]),
        (["dhz_val_loss.py", "dhz", "--val-fraction", "0"], ["error:", "--val-fraction 0.0", "above 0"]),
        (["dhz_greedy_soup.py", "dhz", "nope", "--out", "new/soup.safetensors"], ["error:", "nope"]),
        (
            ["dhz_greedy_soup.py", "dhz", "dhz", "--out", "new/soup.safetensors", "--threads", "0"],
            ["error:", "--threads 0"],
        ),
        (["dhz_train_memory.py", "--batch", "0"], ["--batch", "integer ≥ 1"]),
        (["dhz_train_memory.py", "--timesteps", "65"], ["--timesteps", "1 to 64"]),
        (["unet_speed.py", "--threads", "0"], ["error:", "--threads 0", "at least 1"]),
        (["unet_speed.py", "--timesteps", "0"], ["error:", "timesteps", "1..64"]),
        (["unet_ablation.py", "--ann", "nope", "--data", "x"], ["error:", "nope", "available names"]),
        (["unet_denoise_eval.py", "--weights", "dhz", "--images", "nowhere"], ["error:", "nowhere"]),
        (["resolution_table.py", "--runs", "0"], ["error:", "--runs"]),
        (["resolution_table.py", "--timesteps", "65"], ["error:", "--timesteps"]),
        (["dhz_colour_oracle.py", "--data", "nowhere"], ["error:", "nowhere", "raw/ and reference/"]),
        (["dhz_colour_oracle.py", "--data", "x", "--size", "8"], ["error:", "--size 8", "at least 16"]),
        (["dhz_colour_oracle.py", "--data", "x", "--timesteps", "0"], ["error:", "--timesteps 0", "1 to 64"]),
        (["dhz_colour_oracle.py", "--data", "x", "--clahe", "1", "0"], ["error:", "--clahe 0.0", "> 0"]),
        (["dhz_contrast_fit.py", "--clip", "0"], ["error:", "--clip 0.0", "> 0"]),
        (["dhz_contrast_fit.py", "--euvp-train", "0"], ["error:", "--euvp-train 0", "at least 1"]),
        (["dhz_contrast_fit.py", "--data", "nowhere"], ["error:", "nowhere", "no raw/ folder", "uieb_real"]),
        (["dhz_contrast_fit.py", "--save", "model.pt"], ["error:", "--save model.pt", "new .safetensors"]),
        (["dhz_contrast_fit.py", "--weighting", "mse"], ["error:", "--weighting", "'mse'", "equal", "db"]),
        (
            ["dhz_contrast_fit.py", "--weights", "nope.safetensors"],
            ["error:", "--weights", "nope", "available names"],
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, argv: list[str], words: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(TOOLS / argv[0]), *argv[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert list(tmp_path.iterdir()) == []


def test_greedy_soup_runs_end_to_end_on_tiny_data(tmp_path: Path) -> None:
    import cv2
    import numpy as np
    import torch

    from snn_perception.models import registry
    from snn_perception.runtime.checkpoint import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(0)
    for i in range(5):
        for sub, scale in (("raw", 0.6), ("reference", 1.0)):
            (tmp_path / "pairs" / sub).mkdir(parents=True, exist_ok=True)
            img = (rng.integers(60, 200, (32, 32, 3)) * scale).astype(np.uint8)
            cv2.imwrite(str(tmp_path / "pairs" / sub / f"{i}.png"), img)
    meta = {"arch": "snntrans_dhz", "task": "dehaze", "variant": "official", "default_timesteps": 1}
    base = registry.build("snntrans_dhz", meta).state_dict()
    for name, seed in (("a", 0), ("b", 1)):  # two small moves from one start, like two fine-tunes
        g = torch.Generator().manual_seed(seed)
        state = {
            k: v + 0.01 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
            for k, v in base.items()
        }
        save_checkpoint(tmp_path / f"{name}.safetensors", state, meta)
    proc = subprocess.run(
        [
            sys.executable,
            str(TOOLS / "dhz_greedy_soup.py"),
            "a.safetensors",
            "b.safetensors",
            "--data",
            "pairs",
            "--val-size",
            "32",
            "--timesteps",
            "1",
            "--threads",
            "1",
            "--out",
            "s/soup.safetensors",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    chosen = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{"soup"')]
    assert len(chosen) == 1 and chosen[0]["soup"], proc.stdout
    if len(chosen[0]["soup"]) > 1:
        meta = load_checkpoint(tmp_path / "s" / "soup.safetensors").metadata
        assert meta["average"]["method"].startswith("greedy")
    else:
        assert not (tmp_path / "s").exists()


def test_env_sh_sets_up_a_bare_shell_for_the_cli_and_ros(tmp_path: Path) -> None:
    """``source tools/env.sh`` from another folder in a shell with nothing set: rclpy, our messages
    and the CLI import, and the ROS settings the package needs are there (what the README's shell
    set-up promises). Subpackages come from the sources, not the install space's mirror of them,
    which lacks any module added since the last ``make setup``."""
    import os

    if not (TOOLS.parent / "install" / "setup.bash").is_file():
        pytest.skip("install/ is not built here: run make setup")
    script = (
        f"source {TOOLS / 'env.sh'} >/dev/null && python -c 'import rclpy, snn_perception.msg' "
        "&& command -v snn-perception >/dev/null "
        "&& echo $ROS_AUTOMATIC_DISCOVERY_RANGE $FASTDDS_DEFAULT_PROFILES_FILE "
        "&& python -c 'import snn_perception.models as m; print(m.__path__[0])'"
    )
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "LOCALHOST",
        str(TOOLS.parent / "config" / "fastdds_localhost.xml"),
        str(TOOLS.parent / "snn_perception" / "models"),
    ]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["missing.html", "out.png"], ["error:", "missing.html is not a file"]),
        (["page.html", "out.jpg"], ["error:", "must end in .png"]),
        (["page.html", "out.png", "wide"], ["error:", "WIDTH and HEIGHT"]),
    ],
)
def test_the_screenshot_tool_refuses_bad_input_in_one_line(
    tmp_path: Path, argv: list[str], words: list[str]
) -> None:
    (tmp_path / "page.html").write_text("<p>hello</p>")
    proc = subprocess.run(
        ["bash", str(TOOLS / "screenshot.sh"), *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for word in words:
        assert word in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed here")
def test_the_screenshot_tool_renders_a_page_in_chromium(tmp_path: Path) -> None:
    import cv2

    (tmp_path / "page.html").write_text('<body style="background:#00ff00;margin:0"></body>')
    proc = subprocess.run(
        ["bash", str(TOOLS / "screenshot.sh"), "page.html", "shot.png", "320", "200"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    shot = cv2.imread(str(tmp_path / "shot.png"))
    assert shot.shape[:2] == (200, 320)
    assert tuple(int(v) for v in shot[100, 160]) == (0, 255, 0)  # BGR: the page's green


def test_omp_wait_sweep_runs_each_setting_and_stops_its_busy_processes(tmp_path: Path) -> None:
    """The sweep behind docs/results/omp_wait_policy.md: every wait setting reaches bench (seen by
    a stand-in CLI that echoes it), its medians are parsed, and the busy loops end with it."""
    stub = tmp_path / "cli"
    stub.write_text(
        "#!/bin/bash\n"
        'echo "     size   T stats  median ms"\n'
        'echo " 256x256    4   off  ${GOMP_SPINCOUNT:-0}.5"\n'
        'echo " 256x256    4    on  2.5 ${OMP_WAIT_POLICY:-unset}"\n'
    )
    stub.chmod(0o755)
    proc = subprocess.run(
        ["bash", str(TOOLS / "omp_wait_sweep.sh"), "1"],
        env={**os.environ, "CLI": str(stub)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 8 and all(line.startswith("busy=1 ") for line in lines), proc.stdout
    assert "busy=1 OMP_WAIT_POLICY=PASSIVE dhz off=0.5 ms on=2.5 ms" in lines
    assert "busy=1 GOMP_SPINCOUNT=10000 spiking_unet off=10000.5 ms on=2.5 ms" in lines
    time.sleep(0.5)
    # a busy loop is a forked copy of the script's shell: it would still carry its command line
    leftover = subprocess.run(["pgrep", "-f", "omp_wait_sweep.sh 1"], capture_output=True, text=True)
    assert not leftover.stdout.strip(), "busy loops left running"


def test_omp_wait_sweep_refuses_a_busy_count_that_is_not_a_number() -> None:
    proc = subprocess.run(
        ["bash", str(TOOLS / "omp_wait_sweep.sh"), "two"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2 and "BUSY two" in proc.stderr and "whole number" in proc.stderr
    assert proc.stdout == ""


def test_colour_oracle_recovers_a_global_grading_and_not_a_local_change(tmp_path: Path) -> None:
    """Pairs whose reference is a colour matrix + offset of the raw image: the raw image scores low
    and the fitted raw image almost perfectly; references with a local change (a blurred half)
    stay below that after the fit. The dehazer's columns are there for the weights given."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    matrix = np.array([[1.1, 0.2, 0.0], [0.1, 0.8, 0.1], [0.0, 0.3, 0.6]])
    for folder, local in (("global", False), ("local", True)):
        for i in range(3):
            raw = cv2.GaussianBlur(rng.uniform(0.1, 0.7, (48, 48, 3)), (5, 5), 0)
            ref = np.clip(raw @ matrix.T + 0.05, 0, 1)
            if local:
                ref[:, :24] = cv2.GaussianBlur(ref, (9, 9), 3)[:, :24]
            for sub, img in (("raw", raw), ("reference", ref)):
                (tmp_path / folder / sub).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(tmp_path / folder / sub / f"{i}.png"), np.round(img * 255).astype(np.uint8))
    scores = {}
    for folder in ("global", "local"):
        out = tmp_path / f"{folder}.json"
        argv = f"--data {tmp_path / folder} --size 48 --split all --weights dhz --timesteps 1 --clahe 1"
        argv += f" --json {out}"
        proc = subprocess.run(
            [sys.executable, str(TOOLS / "dhz_colour_oracle.py"), *argv.split()],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        scores[folder] = json.loads(out.read_text())["scores"]
    fitted = scores["global"]["raw+colour3x3"]
    assert fitted["psnr"] > 40 and fitted["ssim"] > 0.99
    assert scores["global"]["raw"]["psnr"] < 25
    assert scores["local"]["raw+colour3x3"]["ssim"] < fitted["ssim"] - 0.02
    assert {"dhz", "dhz->raw", "dhz+colour3x3", "classical", "classical+colour3x3"} <= set(scores["global"])
    assert {"raw+clahe1", "dhz+clahe1", "dhz->raw+clahe1"} <= set(scores["global"])
    one = tmp_path / "one"  # one pair: its validation split is empty, refused in one line
    for sub in ("raw", "reference"):
        (one / sub).mkdir(parents=True)
        shutil.copy(tmp_path / "global" / sub / "0.png", one / sub / "0.png")
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "dhz_colour_oracle.py"), "--data", str(one)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "val split holds no pair" in proc.stderr, proc.stderr


def test_eval_table_sweep_says_which_curves_never_fall(tmp_path: Path) -> None:
    def m(psnr: float, ssim: float) -> dict:
        return {"mean": {"psnr": psnr, "ssim": ssim}}

    doc = {
        "images": ["a.png", "b.png"],
        "methods": {
            "raw": m(15.0, 0.7),
            "w@T1": m(18.0, 0.80), "w@T2": m(18.5, 0.81), "w@T4": m(18.5, 0.82),
            "w@T1+global": m(18.0, 0.80), "w@T2+global": m(18.6, 0.82), "w@T4+global": m(18.4, 0.83),
        },
    }  # fmt: skip
    path = tmp_path / "split_val_256.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run(
        [sys.executable, str(TOOLS / "dhz_eval_table.py"), "--sweep", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[1].strip(): line for line in proc.stdout.splitlines() if line.startswith("| w")}
    assert rows["w (T 1/2/4)"].endswith("| yes |")  # equal steps count as non-decreasing
    assert rows["w+global (T 1/2/4)"].endswith("| **no** |")  # PSNR falls at T = 4
    assert "18.00 / 18.60 / 18.40" in rows["w+global (T 1/2/4)"]


def test_val_splits_eval_scores_each_source_as_the_recipe_held_it_out(tmp_path: Path) -> None:
    """tools/dhz_val_splits_eval.sh: one evaluate per training source, its validation split as
    tools/dhz_v2_recipe.sh held it out and its scoring size, the caller's options passed on (seen by
    a stand-in CLI that writes its arguments as the JSON); KEEP=1 skips sources already scored."""
    stub = tmp_path / "cli"
    stub.write_text(
        '#!/bin/bash\nfor a; do [[ $prev == --json ]] && printf "%s\\n" "$*" > "$a"; prev=$a; done\n'
    )
    stub.chmod(0o755)
    env = {**os.environ, "CLI": str(stub), "SNN_SHARED_DIR": "/s", "SUFFIX": "_x"}
    script = str(TOOLS / "dhz_val_splits_eval.sh")
    proc = subprocess.run(
        ["bash", script, str(tmp_path / "o"), "--weights", "w.safetensors", "--timesteps", "1", "4"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    sizes = {"lsui_pairs": 512, "euvp_dark": 256, "uieb_real": 256, "ufo120_sample": 256}
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(
        f"{s}_val_{n}_x.json" for s, n in sizes.items()
    )
    for src, size in sizes.items():
        argv = (tmp_path / "o" / f"{src}_val_{size}_x.json").read_text().split()
        assert argv[:3] == ["evaluate", "--task", "dehaze"] and f"/s/data/{src}" in argv
        assert (
            " ".join(argv).count(f"--split val --seed 0 --val-fraction 0.2 --val-max 40 --size {size}x{size}")
            == 1
        )
        assert argv[-7:-2] == ["--weights", "w.safetensors", "--timesteps", "1", "4"]
    kept = subprocess.run(
        ["bash", script, str(tmp_path / "o")], env={**env, "KEEP": "1", "CLI": "false"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert kept.returncode == 0 and kept.stdout.count("== kept") == 4, kept.stderr
    usage = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60)
    assert usage.returncode != 0 and "usage: tools/dhz_val_splits_eval.sh OUT" in usage.stderr


def test_full_scoring_refuses_missing_weights_before_running_anything(tmp_path: Path) -> None:
    script = str(TOOLS / "dhz_full_scoring.sh")
    usage = subprocess.run(["bash", script], capture_output=True, text=True, timeout=60)
    assert usage.returncode != 0 and "usage: tools/dhz_full_scoring.sh WEIGHTS OUT" in usage.stderr
    missing = subprocess.run(
        ["bash", script, str(tmp_path / "nope.safetensors"), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert missing.returncode == 2 and "nope.safetensors: no such weights file" in missing.stderr
    assert not (tmp_path / "out").exists()


def _recipe_argv(tmp_path: Path, tag: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """Runs tools/dhz_v2_recipe.sh with a stand-in CLI that prints the arguments it was given."""
    stub = tmp_path / "cli"
    stub.write_text('#!/bin/bash\nprintf "%s\\n" "$*"\n')
    stub.chmod(0o755)
    keep = {k: v for k, v in os.environ.items() if k not in _RECIPE_SETTINGS}
    return subprocess.run(
        ["bash", str(TOOLS / "dhz_v2_recipe.sh"), "/s/data", str(tmp_path / tag)],
        env={**keep, "CLI": str(stub), **settings}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


_RECIPE_SETTINGS = (
    "RECIPE INIT MIX W_SSIM W_TV ANYTIME_WEIGHTS MONOTONE MONOTONE_PER EPOCHS EPOCH_SIZE LR THREADS SEED DIM "
    "WIDEN_LR CONSISTENCY"
).split()


def test_recipe_preset_v4b_is_dhz_v4_bs_settings_and_the_environment_still_wins(tmp_path: Path) -> None:
    """RECIPE=v4b trains exactly what dhz_v4 and dhz_v5 (and dhz_v6 as it ran) wrote out as
    settings; a setting given beside it wins; an unknown name is refused in one line before anything
    runs."""
    written_out = {
        "INIT": "dhz_v3", "MIX": "8 1 1 0.5", "W_SSIM": "1", "W_TV": "0.05", "ANYTIME_WEIGHTS": "0.5 0.5 2 1",
        "MONOTONE": "1", "MONOTONE_PER": "image", "EPOCHS": "4", "EPOCH_SIZE": "320", "LR": "1e-4",
    }  # fmt: skip
    explicit = _recipe_argv(tmp_path, "run", **written_out)
    preset = _recipe_argv(tmp_path, "run", RECIPE="v4b")
    assert explicit.returncode == preset.returncode == 0, preset.stderr
    assert preset.stdout == explicit.stdout
    assert "--mix 8 1 1 0.5" in preset.stdout and "--anytime-weights 0.5 0.5 2 1" in preset.stdout
    plain = _recipe_argv(tmp_path, "run")
    assert plain.returncode == 0 and plain.stdout != preset.stdout and "--init dhz " in plain.stdout
    longer = _recipe_argv(tmp_path, "run", RECIPE="v4b", EPOCHS="8", DIM="80", WIDEN_LR="30")
    assert longer.stdout == explicit.stdout.replace("--epochs 4", "--epochs 8").replace(
        "--dim 64", "--dim 80 --widen-lr 30"
    )
    pulled = _recipe_argv(tmp_path, "run", RECIPE="v4b", CONSISTENCY="4")
    assert pulled.stdout == explicit.stdout.replace("--dim 64", "--dim 64 --consistency 4")
    bad = _recipe_argv(tmp_path, "run", RECIPE="v4")
    assert bad.returncode == 2 and bad.stdout == ""
    refusal = "error: RECIPE='v4' is not a named recipe; accepted: v4b (or leave RECIPE unset)"
    assert bad.stderr.strip() == refusal
