"""Launch arguments are checked before any node starts, and the interfaces show with ``ros2 interface``.

Bad values end ``ros2 launch`` with one line naming the argument and what is accepted (it used to
end with a bare ``invalid literal for int()``, or start nodes that exited at once). No node is
started for these, so each case costs only the launch process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nodeproc import REPO
from ros2proc import ros2

LAUNCH = ("launch", "snn_perception", "perception.launch.py")


def _launch_refused(env: dict[str, str], *args: str) -> str:
    res = ros2(env, *LAUNCH, *args, timeout=120)
    out = res.stdout
    assert res.returncode != 0, out
    assert "process started" not in out and "Traceback" not in out, out
    return out


@pytest.mark.parametrize(
    "arg,words",
    [
        ("timesteps:=abc", "timesteps:='abc' is not accepted: give an integer 0..64"),
        ("timesteps:=100", "timesteps:='100' is not accepted: give an integer 0..64"),
    ],
)
def test_bad_timesteps_are_refused_at_launch_with_the_accepted_range(ros2_env, arg, words):
    out = _launch_refused(ros2_env, arg)
    assert words in out, out
    assert "invalid literal" not in out, out


def test_every_bad_argument_is_named_in_one_line(ros2_env, tmp_path):
    bad = [
        "input_transport:=theora",
        "device:=tpu",
        "autostart:=maybe",
        f"source:={tmp_path / 'no_such_dive.mp4'}",
        "rate_hz:=0",
        "namespace:=1rov",
        "log_level:=loud",
        "segment_input:=sonar",
        f"params_file:={tmp_path / 'missing.yaml'}",
    ]
    out = _launch_refused(ros2_env, *bad)
    lines = [line for line in out.splitlines() if "is not accepted" in line]
    assert len(lines) == 1, out
    for arg in bad:
        name = arg.split(":=")[0]
        assert f"{name}:=" in lines[0], (name, out)
    assert "give one of raw, compressed" in lines[0] and "give one of cpu, cuda, auto" in lines[0]


def test_a_parameter_file_a_node_would_refuse_ends_ros2_launch_before_any_node_starts(ros2_env, tmp_path):
    f = tmp_path / "vehicle.yaml"
    f.write_text("dehaze_node:\n  ros__parameters:\n    strength: 1\n    timesteps: 100\n")
    out = _launch_refused(ros2_env, f"params_file:={f}")
    lines = [line for line in out.splitlines() if "is not accepted" in line]
    assert len(lines) == 1, out
    assert (
        "/dehaze_node: strength: 1 is an integer" in lines[0] and "timesteps 100 is out of range" in lines[0]
    )


def test_show_args_lists_every_argument_with_its_description(ros2_env):
    from snn_perception.ros.launch_args import ARGUMENT_NAMES

    out = ros2(ros2_env, *LAUNCH, "--show-args").stdout
    for name in ARGUMENT_NAMES:
        assert f"'{name}':" in out, (name, out)
    # the weights arguments name the models this install can load, and empty defers to the file
    assert "Dehaze model name (dhz, " in out and "Segment model name (spiking_unet, " in out
    assert out.count("empty = params_file's (else ") >= 2


@pytest.mark.parametrize(
    "name,text,words",
    [
        ("timesteps", "4.5", "integer 0..64"),
        ("timesteps", "-1", "integer 0..64"),
        ("device", "gpu", "give one of cpu, cuda, auto"),
        ("dehaze_weights", "spiking_unet", "'spiking_unet' is a segment model; dehaze weights: dhz,"),
        ("segment_weights", "nosuch", "no such file or shipped model name"),
        ("rate_hz", "nan", "0.1..240"),
        ("rate_hz", "300", "0.1..240"),
        ("start_dehaze", "yes", "true or false"),
        ("camera_topic", "camera//raw", "topic name"),
        ("camera_topic", "", "topic name"),
        ("namespace", "rov front", "namespace"),
    ],
)
def test_parse_refuses_each_bad_value(name, text, words):
    from snn_perception.ros.launch_args import LaunchArgumentError, parse

    with pytest.raises(LaunchArgumentError, match=words) as err:
        parse({**_defaults(), name: text})
    assert str(err.value).startswith(f"{name}:={text!r} is not accepted")


def test_parse_types_the_defaults_and_accepted_values():
    from snn_perception.ros.launch_args import parse

    a = parse(_defaults())
    assert (a.timesteps, a.autostart, a.rate_hz, a.namespace, a.log_level) == (None, None, None, "", "info")
    assert a.nodes == {"dehaze_node": {}, "segment_node": {"input_transport": "raw"}}, "empty: pass nothing"
    assert a.node_autostart == {"dehaze_node": True, "segment_node": True} and a.warnings == ()
    given = {"timesteps": "64", "autostart": "False", "namespace": "/rov/front/", "source": "0"}
    b = parse({**_defaults(), **given})
    assert (b.timesteps, b.autostart, b.namespace, b.source) == (64, False, "rov/front", "0")
    assert b.nodes["dehaze_node"] == {"timesteps": 64, "autostart": False}
    assert b.nodes["image_source_node"] == {"source": "0", "transport": "raw"}
    assert b.node_autostart == {"dehaze_node": False, "segment_node": False}


def test_the_parameter_file_holds_where_an_argument_is_left_empty(tmp_path):
    """A vehicle's file sets T, transport, autostart and the camera: the launch passes none of its
    own defaults over them and wires the nodes by the file's values (rcl's matching: the entry for
    /rov/dehaze_node applies under namespace:=rov only)."""
    from snn_perception.ros.launch_args import parse

    f = tmp_path / "vehicle.yaml"
    f.write_text(
        "/**:\n  ros__parameters:\n    timesteps: 8\n    input_transport: compressed\n"
        "/rov/dehaze_node:\n  ros__parameters:\n    autostart: false\n"
        f"image_source_node:\n  ros__parameters:\n    source: {tmp_path}\n    rate_hz: 5.0\n"
    )
    a = parse({**_defaults(), "params_file": str(f), "namespace": "rov"})
    assert a.nodes["dehaze_node"] == {} and a.node_autostart == {"dehaze_node": False, "segment_node": True}
    assert "image_source_node" not in a.nodes, "the source's entry is for /image_source_node, not /rov/…"
    b = parse({**_defaults(), "params_file": str(f)})
    assert b.node_autostart["dehaze_node"] and b.source == str(tmp_path)
    assert b.nodes["image_source_node"] == {"transport": "compressed"}, "follows the camera-fed dehazer"
    c = parse({**_defaults(), "params_file": str(f), "input_transport": "raw", "rate_hz": "2"})
    assert c.nodes["image_source_node"] == {"transport": "raw", "rate_hz": 2.0}
    assert c.nodes["dehaze_node"] == {"input_transport": "raw"}


@pytest.mark.parametrize(
    "text,words",
    [
        (
            "/**:\n  ros__parameters:\n    timesteps: 100\n",
            "/dehaze_node, /segment_node: timesteps 100 is out",
        ),
        ("dehaze_node:\n  ros__parameters:\n    strength: 1\n", "/dehaze_node: strength: 1 is an integer"),
        ("dehaze_node:\n  ros__parameters:\n    grading: vivid\n", "grading 'vivid' is not one of"),
        ("segment_node:\n  ros__parameters:\n    weights: dhz\n", "weights 'dhz' is a dehaze model"),
        ("/**:\n  ros__parameters:\n    device: [cpu\n", "is not valid YAML: line 4, column 1"),
        ("dehaze_node:\n  timesteps: 4\n", "has no 'ros__parameters'"),
    ],
)
def test_a_parameter_file_a_node_would_refuse_ends_the_launch_in_one_line(tmp_path, text, words):
    from snn_perception.ros.launch_args import LaunchArgumentError, parse

    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(LaunchArgumentError, match=r"^params_file:=.* is not accepted: ") as err:
        parse({**_defaults(), "params_file": str(f)})
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_an_argument_replaces_a_bad_file_value_and_unknown_names_warn(tmp_path):
    from snn_perception.ros.launch_args import parse

    f = tmp_path / "p.yaml"
    f.write_text(
        "/**:\n  ros__parameters:\n    timesteps: 100\n    other_nodes_gain: 3\n    stregth: 0.5\n"
        "segment_node:\n  ros__parameters:\n    colour: red\n"
    )
    a = parse({**_defaults(), "params_file": str(f), "timesteps": "4"})  # the nodes never see 100
    assert a.warnings == (
        "/dehaze_node has no parameter 'stregth' (set by /**, ignored); did you mean 'strength'?",
        "/segment_node has no parameter 'colour' (set by /segment_node, ignored)",
    ), "a /** entry may hold other nodes' parameters: only near misses are named there"


def test_the_shipped_file_warns_about_nothing_with_every_node_started(tmp_path):
    """Its /** entry sets the perception nodes' input_transport, which the image source (reading
    `transport`) used to be warned about at every launch with a source; a node's own entry still is."""
    from snn_perception.ros.launch_args import parse

    a = parse({**_defaults(), "source": str(tmp_path)})
    assert set(a.nodes) == {"dehaze_node", "segment_node", "image_source_node"} and a.warnings == ()
    f = tmp_path / "p.yaml"
    f.write_text("image_source_node:\n  ros__parameters:\n    input_transport: compressed\n")
    b = parse({**_defaults(), "source": str(tmp_path), "params_file": str(f)})
    assert b.warnings == (
        "/image_source_node has no parameter 'input_transport' (set by /image_source_node, ignored); "
        "did you mean 'transport'?",
    )


def _defaults() -> dict[str, str]:
    """The launch file's defaults, as ``ros2 launch`` hands them over (text)."""
    import ast

    tree = ast.parse((REPO / "launch" / "perception.launch.py").read_text())
    table = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    out = {}
    for elt in table.value.elts:
        name, default = elt.elts[0].value, elt.elts[1]
        yaml = REPO / "config" / "perception.yaml"  # the default is a FindPackageShare substitution
        out[name] = default.value if isinstance(default, ast.Constant) else str(yaml)
    return out


def _pip_setup_hook() -> Path:
    share = REPO / "install" / "snn_perception" / "share" / "snn_perception"
    hook = share / "environment" / "python_prefix.dsv"
    if not hook.is_file():
        pytest.skip("install/ was not built by the pip set-up (make setup): nothing of the venv to add")
    return hook


def test_install_setup_bash_puts_the_venv_of_the_ros_wheels_first(tmp_path):
    """No ros2 CLI needed: after ``source install/setup.bash`` alone, the ament index finds the wheels'
    packages and ``python3`` (what the node executables run) is the venv's."""
    _pip_setup_hook()
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    code = "import sys, ament_index_python as a; print(a.get_package_prefix('std_msgs')); print(sys.prefix)"
    script = f"source {REPO / 'install' / 'setup.bash'} && python3 -c {code!r}"
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.split() == [sys.prefix, sys.prefix], res.stdout


def test_ros2_interface_show_works_after_sourcing_install_setup_bash(ros2_tools, tmp_path):
    """Only ``install/setup.bash`` sourced, in a shell without the venv: the pip set-up's environment
    hook puts the venv (where std_msgs lives) on AMENT_PREFIX_PATH and its bin/ on PATH."""
    _pip_setup_hook()
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    script = (
        f"source {REPO / 'install' / 'setup.bash'} && ros2 interface show snn_perception/msg/EnergyTelemetry"
        " && ros2 interface show snn_perception/srv/LoadModel"
    )
    res = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Unknown package" not in res.stdout + res.stderr
    assert "\tbuiltin_interfaces/Time stamp" in res.stdout, res.stdout  # std_msgs/Header expanded
    assert "string weights" in res.stdout and "float64 energy_j" in res.stdout


def test_a_camera_index_in_the_file_may_be_an_integer(tmp_path):
    from snn_perception.ros.launch_args import LaunchArgumentError, parse

    f = tmp_path / "p.yaml"
    f.write_text("image_source_node:\n  ros__parameters:\n    source: 0\n")
    a = parse({**_defaults(), "params_file": str(f)})
    assert a.source == "0" and "image_source_node" in a.nodes, "source: 0 starts camera 0"
    f.write_text("image_source_node:\n  ros__parameters:\n    source: -1\n")
    with pytest.raises(LaunchArgumentError, match="a camera index is 0 or more"):
        parse({**_defaults(), "params_file": str(f)})
