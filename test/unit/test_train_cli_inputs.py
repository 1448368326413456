"""Bad input to ``train dhz``, ``train unet``, ``convert`` and ``finetune`` is refused before any work.

Each refusal is exit code 2 with one line naming the option and what is accepted, no traceback, and
no input or earlier result changed (every file under the work folder keeps its bytes). The cases
that could lose data run the real CLI in a subprocess, the way a user meets it; the many bad-number
cases go through the same ``cli.main`` in-process, so torch is imported once and they stay fast.
Everything runs on tiny images made here (no shared data needed).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_run import cli as _cli
from cli_run import refused as _refused
from cli_run import snapshot as _snapshot

from snn_perception.cli import main
from snn_perception.runtime.checkpoint import load_checkpoint

pytest.importorskip("snn_perception.models.dhz", reason="the snnTrans-DHZ model is not available")

DHZ = [
    "--crop",
    "32",
    "--resize",
    "32",
    "--timesteps",
    "1",
    "--batch",
    "2",
    "--val-size",
    "32",
    "--threads",
    "1",
    "--device",
    "cpu",
]
UNET = ["--width", "4", "--classes", "3", "--size", "32", "--crop", "32", "--batch", "2", "--threads", "1"]


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    assert cv2.imwrite(str(path), np.clip(rng.normal(value, 30, (32, 32, 3)), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny data and one finished run of every kind (made once; tests must leave it unchanged).

    dh/ (raw + reference), seg/ (images + masks), dhz/ (a train dhz run), unet/ (a train unet run),
    snn.safetensors (converted), snn_ft.safetensors + snn_ft_finetune/last.pt (fine-tuned),
    w.txt (text) and rand.safetensors (random bytes).
    """
    root = tmp_path_factory.mktemp("train_inputs")
    for i in range(4):
        _image(root / "dh" / "raw" / f"{i}.png", 70 + i)
        _image(root / "dh" / "reference" / f"{i}.png", 120 + i)
        _image(root / "seg" / "images" / f"{i}.png", 100 + i)
        mask = np.zeros((32, 32), np.uint8)
        mask[:, 16:] = 1 + i % 2
        (root / "seg" / "masks").mkdir(exist_ok=True)
        assert cv2.imwrite(str(root / "seg" / "masks" / f"{i}.png"), mask)
    (root / "w.txt").write_text("not a checkpoint\n")
    (root / "rand.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    r = str(root)
    assert main(["train", "dhz", "--data", f"{r}/dh", *DHZ, "--epochs", "1", "--out", f"{r}/dhz"]) == 0
    assert main(["train", "unet", "--data", f"{r}/seg", *UNET, "--epochs", "1", "--out", f"{r}/unet"]) == 0
    assert (
        main(
            [
                "convert",
                "--weights",
                f"{r}/unet/best.safetensors",
                "--data",
                f"{r}/seg",
                "--calib",
                "2",
                "--threads",
                "1",
                "--out",
                f"{r}/snn.safetensors",
            ]
        )
        == 0
    )
    # no --crop: the checkpoint's 32x32 is below the default 224, so the whole image is the crop
    assert (
        main(
            [
                "finetune",
                "--weights",
                f"{r}/snn.safetensors",
                "--data",
                f"{r}/seg",
                "--epochs",
                "1",
                "--batch",
                "2",
                "--threads",
                "1",
                "--out",
                f"{r}/snn_ft.safetensors",
            ]
        )
        == 0
    )
    return root


def test_finetune_crop_defaults_to_the_image_when_it_is_smaller_than_224(work: Path) -> None:
    meta = load_checkpoint(work / "snn_ft.safetensors").metadata
    assert meta["finetune"]["crop"] == [32, 32]


# --- 1. convert / finetune never replace their input, nor an existing --out without --overwrite


@pytest.mark.parametrize(
    ("verb", "weights"),
    [("convert", "unet/best.safetensors"), ("finetune", "snn.safetensors")],
)
def test_out_is_never_the_weights_even_with_overwrite(work: Path, verb: str, weights: str) -> None:
    before = _snapshot(work)
    proc = _cli(verb, "--weights", weights, "--data", "seg", "--out", weights, "--overwrite", cwd=work)
    _refused(proc, "--out", weights, "also an input")
    assert _snapshot(work) == before


@pytest.mark.parametrize(
    ("verb", "weights"),
    [("convert", "unet/best.safetensors"), ("finetune", "snn.safetensors")],
)
def test_existing_out_needs_overwrite(work: Path, verb: str, weights: str) -> None:
    before = _snapshot(work)
    proc = _cli(verb, "--weights", weights, "--data", "seg", "--out", "snn_ft.safetensors", cwd=work)
    _refused(proc, "--out snn_ft.safetensors already exists", "--overwrite")
    assert _snapshot(work) == before


def test_convert_overwrite_replaces_the_earlier_result(work: Path, tmp_path: Path) -> None:
    out = tmp_path / "snn.safetensors"
    shutil.copy(work / "snn.safetensors", out)
    out.write_bytes(out.read_bytes()[:-1] + b"\0")  # differs from what convert will write
    earlier = out.read_bytes()
    argv = [
        "convert",
        "--weights",
        str(work / "unet" / "best.safetensors"),
        "--data",
        str(work / "seg"),
        "--calib",
        "2",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 2 and out.read_bytes() == earlier
    assert main([*argv, "--overwrite"]) == 0 and out.read_bytes() != earlier


def test_finetune_refuses_an_earlier_workdir_unless_resumed(work: Path) -> None:
    before = _snapshot(work)
    proc = _cli(
        "finetune",
        "--weights",
        "snn.safetensors",
        "--data",
        "seg",
        "--out",
        "other.safetensors",
        "--workdir",
        "snn_ft_finetune",
        cwd=work,
    )
    _refused(proc, "--workdir snn_ft_finetune already holds an earlier fine-tune", "--resume", "--overwrite")
    assert _snapshot(work) == before and not (work / "other.safetensors").exists()


# --- 2. train refuses an --out that holds an earlier run unless --resume or --overwrite


@pytest.mark.parametrize(
    ("target", "argv"),
    [("dhz", ["--data", "dh", *DHZ]), ("unet", ["--data", "seg", *UNET])],
)
def test_train_refuses_an_earlier_run(work: Path, target: str, argv: list[str]) -> None:
    before = _snapshot(work)
    proc = _cli("train", target, *argv, "--epochs", "1", "--out", target, cwd=work)
    _refused(proc, f"--out {target} already holds a run", f"--resume {target}/last.pt", "--overwrite")
    assert _snapshot(work) == before


def test_train_overwrite_replaces_only_the_runs_own_files(work: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "unet"
    shutil.copytree(work / "unet", run)
    (run / "notes.txt").write_text("mine")
    earlier = (run / "best.safetensors").read_bytes()
    argv = [
        "train",
        "unet",
        "--data",
        str(work / "seg"),
        *UNET,
        "--epochs",
        "1",
        "--seed",
        "3",
        "--out",
        str(run),
    ]
    assert main([*argv, "--resume", str(run / "last.pt"), "--overwrite"]) == 2
    assert "pass only one" in capsys.readouterr().err
    assert (run / "best.safetensors").read_bytes() == earlier
    assert main([*argv, "--overwrite"]) == 0
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "best.safetensors").read_bytes() != earlier
    assert (run / "train.log").read_text().count("train unet: width") == 1  # the old log went too


# --- 3. bad --init / --resume: one line saying what the file is and what is expected


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "dhz", "--data", "dh", *DHZ, "--init", "nosuch"], ["--init", "nosuch", "available names"]),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--init", "rand.safetensors"],
            ["--init rand.safetensors", "not a readable safetensors file"],
        ),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--init", "spiking_unet"],
            ["--init", "holds architecture 'spiking_lite_unet', expected 'snntrans_dhz'"],
        ),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--resume", "w.txt"],
            ["--resume w.txt: not a training state", "'train dhz'"],
        ),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--resume", "dhz/best.safetensors"],
            ["--resume dhz/best.safetensors: a weights checkpoint, not a training state", "last.pt"],
        ),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--resume", "unet/last.pt"],
            ["--resume unet/last.pt: holds a 'train unet' state", "'train dhz'"],
        ),
        (
            ["train", "unet", "--data", "seg", *UNET, "--resume", "dhz/last.pt"],
            ["--resume dhz/last.pt: holds a 'train dhz' state", "'train unet'"],
        ),
        (
            ["train", "unet", "--data", "seg", *UNET[2:], "--width", "8", "--resume", "unet/last.pt"],
            ["--resume unet/last.pt: a 'train unet' state of a different network", "original run"],
        ),
        (
            ["finetune", "--weights", "snn.safetensors", "--data", "seg", "--resume", "dhz/last.pt"],
            ["--resume dhz/last.pt: holds a 'train dhz' state", "'finetune'"],
        ),
        (
            ["finetune", "--weights", "snn.safetensors", "--data", "seg", "--resume", "unet/last.pt"],
            ["--resume unet/last.pt: holds a 'train unet' state", "'finetune'"],
        ),
    ],
    ids=[
        "init-missing",
        "init-random-bytes",
        "init-wrong-arch",
        "resume-text",
        "resume-safetensors",
        "resume-unet-into-dhz",
        "resume-dhz-into-unet",
        "resume-other-width",
        "finetune-resume-dhz",
        "finetune-resume-unet",
    ],
)
def test_bad_init_or_resume_is_refused_before_anything_is_written(
    work: Path, argv: list[str], words: list[str]
) -> None:
    before = _snapshot(work)
    out = ["--out", "new.safetensors"] if argv[0] == "finetune" else ["--epochs", "1", "--out", "new"]
    _refused(_cli(*argv, *out, cwd=work), *words)
    assert _snapshot(work) == before
    assert not (work / "new").exists() and not (work / "new_finetune").exists()


# --- 4. numbers that would reach torch unchecked


def _main(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = int(exc.code or 0)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "dhz", "--lr", "nan"], ["--lr nan", "finite number above 0"]),
        (["train", "dhz", "--lr", "-1"], ["--lr -1", "above 0"]),
        (["train", "dhz", "--min-lr", "inf"], ["--min-lr inf", "finite"]),
        (["train", "dhz", "--val-size", "0"], ["--val-size 0", "at least 8"]),
        (["train", "dhz", "--w-mse", "nan"], ["--w-mse nan", "finite number ≥ 0"]),
        (["train", "dhz", "--w-ssim", "-1"], ["--w-ssim -1", "≥ 0"]),
        (["train", "dhz", "--w-mse", "0", "--w-ssim", "0", "--w-tv", "0"], ["all 0", "above 0"]),
        (["train", "dhz", "--synthetic", "-5"], ["--synthetic -5", "0 or more"]),
        (["train", "dhz", "--synthetic-val", "-1"], ["--synthetic-val -1", "0 or more"]),
        (["train", "dhz", "--synthetic-from", "."], ["--synthetic-from", "only with --synthetic N > 0"]),
        (
            ["train", "dhz", "--synthetic", "2", "--synthetic-from", "nowhere"],
            ["--synthetic-from nowhere", "not a folder"],
        ),
        (["train", "dhz", "--tone-jitter", "2"], ["--tone-jitter 2", "in [0, 0.9]"]),
        (["train", "dhz", "--extra-water", "1.5"], ["--extra-water 1.5", "probability in [0, 1]"]),
        (["train", "dhz", "--ema", "1"], ["--ema 1", "decay in (0, 1)"]),
        (["train", "dhz", "--threads", "0"], ["--threads 0", "at least 1"]),
        (["train", "dhz", "--resize", "-5"], ["--resize -5", "at least --crop"]),
        (["train", "dhz", "--min-lr", "1"], ["--min-lr 1", "in [0, --lr (0.001)]"]),
        (["train", "dhz", "--crop", "8", "--batch", "1"], ["--crop 8", "at least 16 with --batch 1"]),
        (["train", "dhz", "--val-fraction", "0.9"], ["--val-fraction 0.9", "leaves no training pair"]),
        (["train", "unet", "--lr", "nan"], ["--lr nan", "finite number above 0"]),
        (["train", "unet", "--classes", "0"], ["--classes 0", "from 2 to 255"]),
        (["train", "unet", "--limit", "0"], ["--limit 0", "at least 1"]),
        (["train", "unet", "--threads", "0"], ["--threads 0", "at least 1"]),
        (["train", "unet", "--width", "12"], ["--width", "invalid choice", "8, 16, 32, 64"]),
        (["train", "unet", "--sigma-max", "1000"], ["--sigma-max 1000", "0 to 255"]),
        (["train", "unet", "--val-fraction", "0"], ["--val-fraction 0.0", "strictly between 0 and 1"]),
        (["train", "unet", "--crop", "64"], ["--crop 64x64", "at most --size 32x32"]),
        (["finetune", "--lr", "nan"], ["--lr nan", "finite number above 0"]),
        (["finetune", "--lr", "-1"], ["--lr -1", "above 0"]),
        (["finetune", "--max-batches", "0"], ["--max-batches 0", "at least 1"]),
        (["finetune", "--max-batches", "-1"], ["--max-batches -1", "at least 1"]),
        (["finetune", "--threads", "0"], ["--threads 0", "at least 1"]),
        (["convert", "--threads", "0"], ["--threads 0", "at least 1"]),
        (
            ["convert", "--thresholds", "a,b"],
            ["--thresholds", "comma-separated positive numbers, high to low, e.g. 2,1,0.5,0.25"],
        ),
        (["convert", "--thresholds", "1,2"], ["--thresholds", "strictly decreasing", "high to low"]),
        (["convert", "--thresholds", "nan"], ["--thresholds", "comma-separated positive numbers"]),
    ],
)
def test_bad_numbers_are_refused_naming_the_flag(
    work: Path, argv: list[str], words: list[str], capsys
) -> None:
    base = {
        ("train", "dhz"): ["--data", str(work / "dh"), *DHZ, "--epochs", "1"],
        ("train", "unet"): ["--data", str(work / "seg"), *UNET, "--epochs", "1"],
        ("finetune",): ["--weights", str(work / "snn.safetensors"), "--data", str(work / "seg")],
        ("convert",): ["--weights", str(work / "unet" / "best.safetensors"), "--data", str(work / "seg")],
    }
    verb = tuple(argv[:2]) if argv[0] == "train" else tuple(argv[:1])
    out = work / "never"
    target = ["--out", str(out) + (".safetensors" if argv[0] != "train" else "")]
    before = _snapshot(work)
    rc, err = _main([*verb, *base[verb], *argv[len(verb) :], *target], capsys)
    assert rc == 2, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert _snapshot(work) == before
    assert not out.exists() and not Path(str(out) + ".safetensors").exists()
    assert not (work / "never_finetune").exists()


# --- 5. finetune: a crop larger than the size is a usage error before anything is loaded


def test_finetune_crop_larger_than_size_is_refused_before_loading(work: Path) -> None:
    before = _snapshot(work)
    # the weights are random bytes: had anything been loaded, the message would be about them
    proc = _cli(
        "finetune",
        "--weights",
        "rand.safetensors",
        "--data",
        "seg",
        "--size",
        "32",
        "--crop",
        "224",
        "--out",
        "ft.safetensors",
        cwd=work,
    )
    _refused(proc, "--crop 224x224", "at most the image size 32x32")
    assert _snapshot(work) == before and not (work / "ft_finetune").exists()


# --- 6. an --out that is a file or cannot be created


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--out", "w.txt"],
            ["--out w.txt", "is a file, not a folder"],
        ),
        (["train", "unet", "--data", "seg", *UNET, "--out", "w.txt/run"], ["w.txt is a file, not a folder"]),
        (
            ["train", "dhz", "--data", "dh", *DHZ, "--out", "/proc/snn_x/run"],
            ["--out /proc/snn_x/run: cannot create the folder"],
        ),
        (
            [
                "convert",
                "--weights",
                "unet/best.safetensors",
                "--data",
                "seg",
                "--out",
                "/proc/snn_x/a.safetensors",
            ],
            ["--out /proc/snn_x/a.safetensors: cannot create its folder"],
        ),
        (
            [
                "finetune",
                "--weights",
                "snn.safetensors",
                "--data",
                "seg",
                "--out",
                "x.safetensors",
                "--workdir",
                "w.txt",
            ],
            ["--workdir w.txt", "is a file, not a folder"],
        ),
        (["train", "dhz", "--data", "dh", *DHZ, "--out", "dh/run"], ["--out dh/run", "inside the --data"]),
        (["train", "unet", "--data", "seg", *UNET, "--out", "seg"], ["--out seg", "inside the --data"]),
        (
            [
                "finetune",
                "--weights",
                "snn.safetensors",
                "--data",
                "seg",
                "--out",
                "x.safetensors",
                "--workdir",
                "seg/ft",
            ],
            ["--workdir seg/ft", "inside the --data folder"],
        ),
        (
            ["finetune", "--weights", "snn.safetensors", "--data", "seg", "--out", "seg/x.safetensors"],
            ["--out seg/x.safetensors", "inside the --data folder"],
        ),
    ],
    ids=[
        "dhz-file",
        "unet-under-file",
        "dhz-proc",
        "convert-proc",
        "finetune-workdir-file",
        "dhz-in-data",
        "unet-is-data",
        "finetune-workdir-in-data",
        "finetune-out-in-data",
    ],
)
def test_unusable_output_folder_is_a_clear_error(work: Path, argv: list[str], words: list[str]) -> None:
    if any(a.startswith("/proc/") for a in argv) and not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc (a folder nothing can be created in)")
    before = _snapshot(work)
    _refused(_cli(*argv, cwd=work), *words)
    assert _snapshot(work) == before


def test_train_dhz_refuses_a_folder_given_twice_and_a_split_without_validation_pairs(
    work: Path, tmp_path: Path, capsys
) -> None:
    dh = str(work / "dh")
    one = tmp_path / "one"
    for sub, value in (("raw", 70), ("reference", 120)):
        _image(one / sub / "0.png", value)
    before = _snapshot(work)
    cases = [
        (["--data", dh, dh], ["--data", "different folders"]),
        (["--data", str(one)], ["--val-fraction 0.2 of 1 pair(s) leaves no validation pair", "or give"]),
    ]
    for data, words in cases:
        argv = ["train", "dhz", *data, *DHZ, "--epochs", "1", "--out", str(tmp_path / "run")]
        rc, err = _main(argv, capsys)
        assert rc == 2 and "Traceback" not in err, err
        for word in words:
            assert word in err, (word, err)
        assert not (tmp_path / "run").exists()
    assert _snapshot(work) == before
