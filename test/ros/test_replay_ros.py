"""ROS-mode replay through the real nodes gives the offline numbers, frame by frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ros_ready() -> None:
    from snn_perception.replay.ros_mode import ros_mode_ready

    ok, why = ros_mode_ready()
    if not ok:
        pytest.skip(f"ROS replay unavailable: {why}")


@pytest.fixture(scope="module")
def euvp_bag(shared: Path, tmp_path_factory) -> Path:
    from snn_perception.replay.make_bag import make_bag

    out = tmp_path_factory.mktemp("euvp") / "bag"
    make_bag(shared / "data" / "euvp_test23" / "raw", out, rate_hz=10.0, storage="sqlite3", start_ns=10**9)
    return out


def _replay(bag: Path, out: Path, env: dict[str, str] | None, *args: str) -> dict:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snn_perception.cli",
            "replay",
            str(bag),
            "--out",
            str(out),
            "--threads",
            "1",
            "--weights",
            "dhz_official",
            "--no-progress",
            *args,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def test_ros_and_offline_modes_agree_per_frame_for_both_nodes(
    ros_ready, ros_environment, euvp_bag, tmp_path
) -> None:
    """The dehazer and a (randomly initialised, real-architecture, small) Spiking-UNet beside it:
    every frame's PSNR, energy and class areas are the offline run's."""
    import torch

    from snn_perception.models import registry
    from snn_perception.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    meta = {
        "arch": "spiking_unet",
        "task": "segment",
        "unet": {"width": 4, "num_classes": 3},
        "default_timesteps": 2,
        "num_classes": 3,
        "class_names": ["water", "fish", "rock"],
        "class_colors": [[0, 0, 255], [255, 255, 0], [255, 255, 255]],
    }
    weights = tmp_path / "seg.safetensors"
    save_checkpoint(weights, registry.build("spiking_unet", meta).state_dict(), meta)
    args = ("--as-fast-as-possible", "--segment-weights", str(weights))
    ros = _replay(euvp_bag, tmp_path / "ros", ros_environment, "--mode", "ros", *args)
    off = _replay(euvp_bag, tmp_path / "off", None, "--mode", "offline", *args)
    assert set(ros["models"]) == {"dehaze", "segment"}
    s = ros["summary"][0]["segment"]
    assert s["processed"] == 23 and s["timesteps"] == 2
    ros_rows, off_rows = ros["runs"][0]["frames"], off["runs"][0]["frames"]
    assert len(ros_rows) == len(off_rows) == 23
    for r, o in zip(ros_rows, off_rows, strict=True):
        assert r["seg_status"] == r["status"] == "ok"
        assert r["stamp_ns"] == o["stamp_ns"]
        assert r["psnr_out"] == pytest.approx(o["psnr_out"], abs=0.01)
        assert r["timesteps"] == o["timesteps"] == 4
        assert r["energy_j"] == pytest.approx(o["energy_j"], rel=1e-6)
        assert r["end_to_end_ms"] >= r["inference_ms"]
        for name in ("water", "fish", "rock"):
            assert r[f"area_{name}"] == pytest.approx(o[f"area_{name}"], abs=1e-9)
        assert r["seg_energy_j"] == pytest.approx(o["seg_energy_j"], rel=1e-6)
    recorded = tmp_path / "ros" / "recorded" / "default"
    assert (recorded / "metadata.yaml").is_file()


def test_ros_mode_real_time_accounting_adds_up(ros_ready, ros_environment, euvp_bag, tmp_path) -> None:
    doc = _replay(
        euvp_bag, tmp_path / "ros", ros_environment, "--mode", "ros", "--rate", "4", "--timesteps", "1,8"
    )
    assert [s["timesteps"] for s in doc["summary"]] == [1, 8]
    for s, run in zip(doc["summary"], doc["runs"], strict=True):
        d = s["dehaze"]
        assert len(run["frames"]) == 23
        assert d["processed"] + d["dropped"] + d["undecodable"] == 23
        assert all(f["timesteps"] == s["timesteps"] for f in run["frames"] if f["status"] == "ok")


def test_clock_carries_bag_time_and_frames_keep_their_bag_stamps(
    ros_ready, ros_environment, euvp_bag, tmp_path
) -> None:
    """``--clock``: /clock follows the bag's time (10 Hz stamps from 1 s); outputs keep the bag stamps."""
    from rosproc import spawn

    sub = spawn(
        [
            "sub",
            "--type",
            "rosgraph_msgs/msg/Clock",
            "--topic",
            "/clock",
            "--count",
            "20",
            "--timeout",
            "240",
        ],
        ros_environment,
    )
    try:
        assert json.loads(sub.stdout.readline()) == {"ready": True}
        doc = _replay(
            euvp_bag,
            tmp_path / "ros",
            ros_environment,
            "--mode",
            "ros",
            "--rate",
            "0.5",
            "--clock",
            "--no-segment",
        )
        out, err = sub.communicate(timeout=60)
    finally:
        sub.kill()
    assert sub.returncode == 0, err[-2000:]
    clocks = [
        m["msg"]["clock"]["sec"] * 10**9 + m["msg"]["clock"]["nanosec"]
        for m in map(json.loads, out.splitlines())
    ]
    first, last = 10**9, 10**9 + 22 * 10**8  # the bag's first and last frame stamps
    assert all(first <= c <= last + 10**9 for c in clocks), clocks
    assert clocks == sorted(clocks) and clocks[-1] > clocks[0]
    frames = doc["runs"][0]["frames"]
    ok = [f for f in frames if f["status"] == "ok"]
    assert len(ok) >= 5  # paced at half speed (5 Hz); on a loaded machine some frames may drop
    assert all(f["sent_stamp_ns"] == f["stamp_ns"] for f in frames)
    assert all(0 < f["end_to_end_ms"] < 10_000 for f in ok)


# -- a node that cannot configure is reported with its reason, at once -----------------------------


@pytest.fixture()
def tiny_bag(tmp_path) -> Path:
    """Three 16×20 frames: enough for the nodes to be started, never enough to wait on."""
    import cv2
    import numpy as np

    from snn_perception.replay.make_bag import make_bag

    (tmp_path / "frames").mkdir()
    for i in range(3):
        img = np.random.default_rng(i).integers(0, 256, (16, 20, 3), np.uint8)
        assert cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), img)
    return make_bag(tmp_path / "frames", tmp_path / "bag", rate_hz=10.0, start_ns=10**9).path


_LET_WEIGHTS_THROUGH = (
    "import sys\n"
    "from snn_perception.replay import ros_mode\n"
    "real = ros_mode.check_weights\n"
    "ros_mode.check_weights = lambda task, weights: real(task, None)  # bad weights reach the node\n"
    "from snn_perception.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_an_in_process_node_that_fails_to_configure_ends_the_replay_with_its_error(
    ros_ready, ros_environment, tiny_bag, tmp_path
) -> None:
    t0 = time.monotonic()
    argv = ["replay", str(tiny_bag), "--out", str(tmp_path / "out"), "--weights", "spiking_unet"]
    res = subprocess.run(
        [sys.executable, "-c", _LET_WEIGHTS_THROUGH, *argv, "--no-segment", "--no-progress"],
        cwd=REPO,
        env=ros_environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert time.monotonic() - t0 < 30, "no 120 s wait for a node that has already failed"
    assert res.returncode == 2, res.stderr[-3000:]
    assert (
        "snn-perception replay: error: dehaze_node: configure failed: cannot load weights 'spiking_unet'"
        in res.stderr
    ), res.stderr[-3000:]
    assert "not a dehaze model" in res.stderr and "timed out" not in res.stderr


def test_an_external_node_that_failed_to_configure_is_reported_from_its_diagnostics(
    ros_ready, ros_environment, tiny_bag, tmp_path
) -> None:
    from nodeproc import NodeProcess

    module, params = "snn_perception.ros.dehaze_node", {"weights": "spiking_unet"}
    node = NodeProcess(module, "dehaze_node", "/ext", params, ros_environment, tmp_path)
    try:
        t0 = time.monotonic()
        argv = ["replay", str(tiny_bag), "--out", str(tmp_path / "out"), "--dehaze-node", "/ext/dehaze_node"]
        res = subprocess.run(
            [sys.executable, "-m", "snn_perception.cli", *argv, "--no-progress"],
            cwd=REPO,
            env=ros_environment,
            capture_output=True,
            text=True,
            timeout=150,
        )
        elapsed = time.monotonic() - t0
    finally:
        node.stop()
    assert res.returncode == 2, (res.stderr[-3000:], node.log())
    assert "error: /ext/dehaze_node: configure failed: cannot load weights 'spiking_unet'" in res.stderr, (
        res.stderr[-3000:]
    )
    assert elapsed < 60, "reported from /diagnostics, not after the 120 s subscribe timeout"


def test_a_launched_node_is_fed_on_the_topic_it_was_remapped_to(
    ros_ready, ros_environment, tiny_bag, tmp_path, monkeypatch
) -> None:
    """`replay --dehaze-node` into a node that reads /cam_<pid>/image_raw, as `ros2 launch` wires it
    (the replay published on <node>/image and waited 120 s in silence); a misspelt node name is
    refused naming the nodes that run (here through the player itself: no second CLI start)."""
    from nodeproc import NodeProcess

    from snn_perception.ros import node_inputs, player

    ns, camera = f"/ext{os.getpid()}", f"/cam{os.getpid()}/image_raw"
    params = {"weights": "dhz", "device": "cpu", "count_ops": False}
    node = NodeProcess(
        "snn_perception.ros.dehaze_node",
        "dehaze_node",
        ns,
        params,
        ros_environment,
        tmp_path,
        remaps={"~/image": camera},
    )
    try:
        argv = ["replay", str(tiny_bag), "--out", str(tmp_path / "out"), "--dehaze-node", f"{ns}/dehaze_node"]
        res = subprocess.run(
            [sys.executable, "-m", "snn_perception.cli", *argv, "--no-progress", "--as-fast-as-possible"],
            cwd=REPO,
            env=ros_environment,
            capture_output=True,
            text=True,
            timeout=150,
        )
        monkeypatch.setenv("ROS_DOMAIN_ID", ros_environment["ROS_DOMAIN_ID"])
        monkeypatch.setattr(node_inputs, "DISCOVERY_S", 2.0)  # the real node is seen by then
        with pytest.raises(player.PlayerError) as typo:
            with player.open_session(False, external={"dehaze": f"{ns}/dehaze_nod"}):
                pass
    finally:
        assert node.stop() == 0, node.log()
    assert res.returncode == 0, (res.stderr[-3000:], node.log())
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["summary"][0]["dehaze"]["processed"] == 3, doc["summary"]
    assert str(typo.value).startswith(f"no node {ns}/dehaze_nod is running (nodes seen: "), typo.value
    assert f"{ns}/dehaze_node" in str(typo.value)


_REFUSED_SESSION = (
    "from snn_perception.ros import node_inputs, player\n"
    "node_inputs.DISCOVERY_S = 0.3\n"
    "try:\n"
    "    with player.open_session(False, external={'dehaze': '/nowhere_%d/dehaze_node'}):\n"
    "        pass\n"
    "except player.PlayerError as exc:\n"
    "    print(exc)\n"
)


def test_a_refused_session_ends_its_process_cleanly(ros_ready, ros_environment) -> None:
    """The spin thread is joined before the interpreter exits: it used to be still in rcl half the
    time, and the process aborted after the refusal ("terminate called …", exit status 134)."""
    for i in range(4):  # the abort came about every other run
        res = subprocess.run(
            [sys.executable, "-c", _REFUSED_SESSION % i],
            cwd=REPO,
            env=ros_environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0 and "terminate" not in res.stderr, (res.returncode, res.stderr[-2000:])
        assert f"no node /nowhere_{i}/dehaze_node is running" in res.stdout, res.stdout
