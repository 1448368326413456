"""Parameter descriptors and the checks that descriptors cannot express; a node refusing a start-up value."""

from __future__ import annotations

import pytest
from nodeproc import dhz_weights

from snn_perception.ros import parameters as P


def test_every_parameter_has_a_description_and_numbers_have_ranges():
    for spec in P.SPECS:
        d = P.descriptor(spec)
        assert len(d.description) > 20, spec.name
        default = getattr(P.NodeParams(), spec.name)
        if isinstance(default, int) and not isinstance(default, bool):
            assert d.integer_range, f"{spec.name} has no range (rqt shows no slider)"
        if isinstance(default, float):
            assert d.floating_point_range, spec.name


def test_model_input_size_moves_in_multiples_of_8():
    for name in ("input_width", "input_height"):
        (r,) = P.descriptor(next(s for s in P.SPECS if s.name == name)).integer_range
        assert (r.from_value, r.step) == (0, 8)


def test_validate_refuses_unknown_names_missing_paths_and_bad_enums(tmp_path):
    assert "no such file" in P.validate("weights", str(tmp_path / "missing.pth"))
    assert "available names" in P.validate("weights", "no_such_model")
    assert P.validate("weights", "") is None
    path = tmp_path / "w.pth"
    path.write_bytes(b"x")
    assert P.validate("weights", str(path)) is None  # existence only; loading checks the content
    assert "cpu, cuda, auto" in P.validate("device", "gpu")
    assert "raw, compressed" in P.validate("input_transport", "h264")
    assert "best_effort, reliable" in P.validate("qos_reliability", "sometimes")
    assert "#RRGGBB" in P.validate("class_colors", ["#00ff00", "green"])
    assert P.validate("class_colors", ["#00ff00", "0000FF"]) is None


def test_a_nodes_weights_help_and_refusals_name_only_its_own_models():
    """rqt and `ros2 param describe` show a dehaze node the dehaze names; a typo lists those too."""
    (spec,) = (s for s in P.SPECS if s.name == "weights")
    described = {task: P.descriptor(spec, task).description for task in ("dehaze", "segment")}
    assert "dhz, " in described["dehaze"] and "spiking_unet" not in described["dehaze"]
    assert "spiking_unet, " in described["segment"] and "dhz" not in described["segment"]
    assert "{names}" not in P.descriptor(spec).description
    refusal = P.validate("weights", "spiking_unt", "segment")
    assert "available names: spiking_unet, " in refusal and "dhz" not in refusal
    assert "dhz_v3" in P.validate("weights", "dhz_v9", "dehaze")


def test_shipped_or_external_names_are_accepted_when_present():
    if dhz_weights() is not None:
        assert P.validate("weights", "dhz_official") is None


def test_check_all_wants_both_input_sizes_or_neither():
    params = P.NodeParams(input_width=256)
    assert any("set both or neither" in r for r in P.check_all(params, "dehaze"))
    assert P.check_all(P.NodeParams(input_width=256, input_height=128), "dehaze") == []


def test_parse_colors():
    assert P.parse_colors(["#102030", "A0B0C0"]) == [(16, 32, 48), (160, 176, 192)]


@pytest.mark.parametrize(
    "arg,words",
    [
        ("strength:=1", "strength: 1 is an integer, the parameter is a double (write 1.0: ROS does not"),
        ("timesteps:=four", "timesteps: 'four' is a string, the parameter is an integer"),
        ("count_ops:=1", "count_ops: 1 is an integer, the parameter is a bool (true or false)"),
        ("timesteps:=100", "out of range"),
    ],
)
def test_a_node_refuses_a_bad_start_up_value_in_one_line(ros_environment, arg, words):
    """``ros2 run snn_perception dehaze_node --ros-args -p strength:=1``: exit code 2 and one line
    (with the fix for the integer given for a double), before any model is loaded."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snn_perception.ros.dehaze_node", "--ros-args", "-p", arg]
    res = subprocess.run(cmd, env=ros_environment, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dehaze_node: ") and words in lines[0], res.stderr
