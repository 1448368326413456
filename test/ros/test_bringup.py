"""Launch file, parameter YAML and the single-process ``snn-perception bringup``."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml
from nodeproc import REPO, dhz_weights, segment_weights, untrained_spiking_unet, wait_for

LAUNCH = REPO / "launch" / "perception.launch.py"
YAML = REPO / "config" / "perception.yaml"


def _launch_arguments() -> dict[str, str]:
    tree = ast.parse(LAUNCH.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            out = {}
            for elt in node.value.elts:
                name, _default, text = elt.elts
                out[name.value] = text.value if isinstance(text, ast.Constant) else ast.unparse(text)
            return out
    raise AssertionError("launch file has no ARGUMENTS table")


def test_launch_file_compiles_and_declares_every_argument_with_a_description():
    compile(LAUNCH.read_text(), str(LAUNCH), "exec")
    args = _launch_arguments()
    required = {
        "namespace",
        "camera_topic",
        "input_transport",
        "device",
        "dehaze_weights",
        "segment_weights",
        "timesteps",
        "start_dehaze",
        "start_segment",
        "use_sim_time",
        "params_file",
        "source",
    }
    assert required <= set(args), required - set(args)
    assert all(len(text) > 10 for text in args.values())


def test_launch_file_loads_with_ros2_launch_when_available(ros2_env):
    # ros2_env: launch_ros installed from ../shared/ros2-tools (or a skip saying why), its overlay sourced
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('perception_launch', {str(LAUNCH)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.generate_launch_description().entities\n"
        "assert 'torch' not in sys.modules, 'the launch file must not pay for a torch import'\n"
    )
    cmd = [sys.executable, "-c", code]
    res = subprocess.run(cmd, env=ros2_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_parameter_yaml_lists_every_node_parameter_with_its_default():
    from snn_perception.ros.parameters import SPECS, NodeParams

    data = yaml.safe_load(YAML.read_text())
    text = YAML.read_text()
    merged = {
        **data["/**"]["ros__parameters"],
        **data["dehaze_node"]["ros__parameters"],
        **data["segment_node"]["ros__parameters"],
    }
    defaults = NodeParams()
    for spec in SPECS:
        if spec.name == "class_colors":  # an empty list cannot be typed in ROS YAML: documented as a comment
            assert "# class_colors:" in text
            continue
        assert spec.name in merged, f"{spec.name} missing from {YAML}"
        assert merged[spec.name] == getattr(defaults, spec.name), spec.name
    for line in text.splitlines():
        if ":" in line and not line.strip().startswith("#") and "ros__parameters" not in line:
            key = line.split(":")[0].strip()
            if key not in ("/**", "dehaze_node", "segment_node", "image_source_node"):
                assert "#" in line, f"parameter line without a comment: {line!r}"


def test_parameter_file_is_read_per_node_with_wildcards_and_namespaces(tmp_path):
    from snn_perception.ros import params_file
    from snn_perception.ros.bringup import _params_for

    pf = params_file.load(YAML)
    assert {"/**", "/dehaze_node", "/segment_node", "/image_source_node"} <= {k for k, _ in pf.entries}
    params = {p.name: p.value for p in _params_for("/segment_node", pf, {"timesteps": 8})}
    assert params["overlay_alpha"] == 0.5 and params["timesteps"] == 8 and params["device"] == "auto"
    other = tmp_path / "p.yaml"
    other.write_text("/rov/dehaze_node:\n  ros__parameters:\n    timesteps: 6\n")
    assert params_file.load(other).for_node("/rov/dehaze_node") == {"timesteps": 6}
    assert params_file.load(other).for_node("/dehaze_node") == {}, "as rcl: another namespace's entry"
    other.write_text("dehaze_node:\n  timesteps: 6\n")
    with pytest.raises(ValueError, match="ros__parameters"):
        params_file.load(other)


def test_the_image_source_publishes_the_transport_the_camera_fed_nodes_read():
    from snn_perception.ros import params_file
    from snn_perception.ros.bringup import BringupConfig, source_transport

    pf = params_file.load(YAML)  # the shipped file names the source's transport (raw)
    none = params_file.EMPTY
    assert source_transport(BringupConfig(source="d"), pf) == "raw"
    comp = {"input_transport": "compressed"}
    over = {"dehaze_node": comp, "segment_node": comp}
    # what `bringup --input-transport compressed` passes: the nodes and the source together
    flag = {**over, "image_source_node": {"transport": "compressed"}}
    assert source_transport(BringupConfig(source="d", overrides=flag), pf) == "compressed"
    assert source_transport(BringupConfig(source="d", overrides=over), none) == "compressed", "unset: follows"
    with pytest.raises(ValueError, match="image_source_node transport 'raw' but dehaze_node"):
        source_transport(BringupConfig(source="d", overrides=over), pf)
    mixed = {"dehaze_node": {"input_transport": "compressed"}}
    cfg = BringupConfig(source="d", segment_input="camera", overrides=mixed)
    with pytest.raises(ValueError, match="dehaze_node reads compressed, segment_node reads raw"):
        source_transport(cfg, none)
    # the segmenter reading the dehazer's output does not constrain the source
    assert source_transport(BringupConfig(source="d", overrides=mixed), none) == "compressed"


def test_bringup_checks_the_parameter_file_for_the_nodes_it_starts(tmp_path):
    """Bad values refuse the bring-up naming node and value; misspelt names warn; a value the
    command line replaces is not held against the file; the image source's rate is the file's
    unless --rate is given (it used to be 10 Hz whatever the file said)."""
    from snn_perception.ros import params_file
    from snn_perception.ros.bringup import BringupConfig, _source_overrides, check_params

    f = tmp_path / "p.yaml"
    f.write_text("/**:\n  ros__parameters:\n    strength: 1\n    timestep: 4\n")
    with pytest.raises(ValueError, match=r"/dehaze_node: strength: 1 is an integer, .*write 1\.0"):
        check_params(BringupConfig(nodes=("dehaze",)), params_file.load(f))
    assert check_params(BringupConfig(nodes=("segment",)), params_file.load(f)) == [
        "/segment_node has no parameter 'timestep' (set by /**, ignored); did you mean 'timesteps'?"
    ], "strength is the dehazer's: the segmenter ignores it, and says so only for near misses"
    f.write_text("dehaze_node:\n  ros__parameters:\n    timesteps: 100\n")
    with pytest.raises(ValueError, match=r"timesteps 100 is out of range 0\.\.64"):
        check_params(BringupConfig(nodes=("dehaze",)), params_file.load(f))
    over = BringupConfig(nodes=("dehaze",), overrides={"dehaze_node": {"timesteps": 4}})
    assert check_params(over, params_file.load(f)) == []
    f.write_text("image_source_node:\n  ros__parameters:\n    rate_hz: 30.0\n")
    assert "rate_hz" not in _source_overrides(BringupConfig(source="d"))
    assert _source_overrides(BringupConfig(source="d", rate_hz=5.0))["rate_hz"] == 5.0
    assert check_params(BringupConfig(source=str(tmp_path)), params_file.load(f)) == []


def test_bringup_runs_the_chain_from_a_folder_and_stops_cleanly_on_ctrl_c(ros_environment, peer, tmp_path):
    from sensor_msgs.msg import Image

    if dhz_weights() is None:
        pytest.skip("the official snnTrans-DHZ checkpoint is absent from ../shared/weights")
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i}.png"), rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    ns = f"/bu{os.getpid()}"
    seg = segment_weights() or untrained_spiking_unet(tmp_path / "untrained_seg.safetensors")
    cmd = [
        sys.executable,
        "-m",
        "snn_perception.cli",
        "bringup",
        "--source",
        str(tmp_path),
        "--rate",
        "4",
        "--namespace",
        ns,
        "--device",
        "cpu",
        "--dehaze-weights",
        str(dhz_weights()),
        "--nodes",
        "dehaze,segment" if seg else "dehaze",
        "--params",
        str(YAML),
        "--status-every",
        "1",
        "--preview",
        str(tmp_path / "preview"),
    ]
    if seg:
        cmd += ["--segment-weights", seg]
    enhanced = peer.collect(Image, f"{ns}/dehaze_node/enhanced")
    masks = peer.collect(Image, f"{ns}/segment_node/mask")
    log = open(tmp_path / "bringup.log", "w")
    proc = subprocess.Popen(cmd, env=ros_environment, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_for(lambda: len(enhanced) >= 3, 120, "3 enhanced frames from the bring-up")
        if seg:
            wait_for(lambda: len(masks) >= 3, 60, "3 masks from the segment node fed by the dehazer")
            assert {m.encoding for m in masks.snapshot()} == {"mono8"}
        msgs = enhanced.snapshot()
        assert {m.header.frame_id for m in msgs} == {"camera_optical_frame"}
        assert {(m.width, m.height, m.encoding) for m in msgs} == {(128, 96, "rgb8")}
        assert all(m.header.stamp.sec > 0 for m in msgs)
        # live feedback without ROS tools: a status line per second with the dehazer's rate and counts
        log.flush()
        wait_for(lambda: " done, " in (tmp_path / "bringup.log").read_text(), 30, "a status line with counts")
        line = next(x for x in (tmp_path / "bringup.log").read_text().splitlines() if " done, " in x)
        assert (
            line.startswith("status: ") and "dehaze_node" in line and "fps" in line and "dropped of" in line
        )
    except TimeoutError as exc:
        proc.kill()
        proc.wait()
        log.close()
        pytest.fail(f"{exc}\n{(tmp_path / 'bringup.log').read_text()[-3000:]}")
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "hung"
    log.close()
    assert rc == 0, (tmp_path / "bringup.log").read_text()[-3000:]


def _bringup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snn_perception.cli", "bringup", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("task", ["dehaze", "segment"])
def test_bringup_exits_with_the_reason_when_a_node_cannot_configure(ros_environment, task, tmp_path):
    """No hang: a node that cannot load its weights at start-up ends the bring-up (exit code 2)."""
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x00" * 64)
    res = _bringup(ros_environment, "--nodes", task, f"--{task}-weights", str(damaged))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "bringup: start-up failed" in res.stderr and "damaged.safetensors" in res.stderr, res.stderr[
        -2000:
    ]
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "args,words",
    [
        (
            ("--nodes", "dehaze", "--dehaze-weights", "nosuch"),
            "--dehaze-weights nosuch: weights 'nosuch': no such",
        ),
        (
            ("--nodes", "segment", "--segment-weights", "dhz"),
            "weights 'dhz' is a dehaze model; segment weights:",
        ),
    ],
)
def test_bringup_refuses_weights_it_cannot_serve_before_starting(ros_environment, args, words):
    res = _bringup(ros_environment, *args)
    assert res.returncode == 2, res.stderr[-2000:]
    assert res.stderr.startswith("snn-perception bringup: error: ") and words in res.stderr, res.stderr[
        -2000:
    ]
    assert "configured" not in res.stdout + res.stderr


def test_bringup_refuses_bad_names_rates_and_parameter_files(ros_environment, tmp_path):
    not_yaml_mapping = tmp_path / "params.yaml"
    not_yaml_mapping.write_text("just a string\n")
    out_of_range = tmp_path / "range.yaml"
    out_of_range.write_text("dehaze_node:\n  ros__parameters:\n    timesteps: 999\n")
    cases = [
        (("--namespace", "bad ns"), "Invalid namespace"),
        (("--camera-topic", "bad topic"), "Invalid topic name"),
        (("--rate", "0"), "must be in 0.1..240 Hz"),
        (("--status-every", "0.1"), "must be 0 (never) or 0.5..3600 s"),
        (("--timesteps", "65"), "must be in 0..64 (0 = each model's default)"),  # 0 passes, as in the launch
        (("--preview", str(not_yaml_mapping)), "is a file; give a folder"),
        (("--params", str(not_yaml_mapping)), "expected a ROS 2 parameter YAML"),
        (
            ("--params", str(out_of_range), "--nodes", "dehaze"),
            "/dehaze_node: timesteps 999 is out of range 0..64",
        ),
    ]
    for args, words in cases:
        res = _bringup(ros_environment, *args)
        assert res.returncode == 2, (args, res.stderr[-2000:])
        assert words in res.stderr and "Traceback" not in res.stderr, (args, res.stderr[-2000:])
