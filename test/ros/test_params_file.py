"""``ros.params_file`` reads a parameter YAML as rcl does: checked against rclpy itself.

The launch file and ``bringup`` decide from it what each node gets (and refuse or warn before a
node starts), so a node must get exactly what this module says: the same entries must match the
same fully qualified names, in the same order of precedence. rclpy runs in a child process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# every way of naming a node in a parameter file, each setting its own parameter
ENTRIES = """
/**:
  ros__parameters: {a: 1, x: 1}
dehaze_node:
  ros__parameters: {b: 1, x: 2}
/rov/dehaze_node:
  ros__parameters: {c: 1}
/other/dehaze_node:
  ros__parameters: {d: 1}
rov:
  dehaze_node:
    ros__parameters: {e: 1, x: 5}
/rov/*:
  ros__parameters: {f: 1}
/**/dehaze_node:
  ros__parameters: {g: 1}
/*:
  ros__parameters: {h: 1}
/dehaze_node:
  ros__parameters: {j: 1, x: 3}
/**:
  ros__parameters: {k: {nested: {depth: 2}}}
"""
NAMESPACES = ("", "rov", "rov/front", "other")

RCLPY = """
import json, sys
import rclpy
from rclpy.node import Node
rclpy.init(args=["--ros-args", "--params-file", sys.argv[1]])
out = {}
for ns in sys.argv[2:]:
    n = Node("dehaze_node", namespace=ns or None, automatically_declare_parameters_from_overrides=True)
    ros = ("use_sim_time", "start_type_description_service")
    out[n.get_fully_qualified_name()] = {k: p.value for k, p in n._parameters.items() if k not in ros}
    n.destroy_node()
rclpy.shutdown()
print(json.dumps(out))
"""


def test_each_node_gets_what_rclpy_gives_it(ros_environment, tmp_path):
    from snn_perception.ros import params_file

    f = tmp_path / "p.yaml"
    f.write_text(ENTRIES)
    res = subprocess.run(
        [sys.executable, "-c", RCLPY, str(f), *NAMESPACES],
        env=ros_environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    rclpy_view = json.loads(res.stdout.strip().splitlines()[-1])
    pf = params_file.load(f)
    ours = {fq: pf.for_node(fq) for fq in rclpy_view}
    assert ours == rclpy_view
    assert rclpy_view["/dehaze_node"]["x"] == 3 and rclpy_view["/rov/dehaze_node"]["x"] == 5, "later wins"
    assert rclpy_view["/dehaze_node"]["k.nested.depth"] == 2, "nested maps are dotted names"


def test_matching_by_name_token():
    from snn_perception.ros.params_file import matches

    assert matches("/**", "/a/b/node") and matches("/**/node", "/node") and matches("node", "/node")
    assert not matches("node", "/rov/node") and not matches("/*", "/rov/node")
    assert matches("/rov/*", "/rov/node") and not matches("/rov/*", "/rov/x/node")


@pytest.mark.parametrize(
    "text,words",
    [
        ("[1, 2]\n", "expected a ROS 2 parameter YAML"),
        ("node:\n  ros__parameters: [1]\n", "/node's ros__parameters is a list"),
        ("node:\n  params: {a: 1}\n", "entry '/node/params' has no 'ros__parameters'"),
        ("/rov/deh*:\n  ros__parameters: {a: 1}\n", "'deh*' is not a node name or namespace"),
        ("node:\n  ros__parameters:\n    a: [1\n", "is not valid YAML: line 4, column 1"),
    ],
)
def test_a_file_that_is_not_a_parameter_yaml_is_refused_in_one_line(tmp_path, text, words):
    from snn_perception.ros.params_file import ParamsFileError, load

    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ParamsFileError) as err:
        load(f)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
