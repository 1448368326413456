"""A value of the wrong type, refused in the operator's words rather than rclpy's, live and at start-up.

rclpy checks a new value's type against the declared one before any callback of ours runs, and
its reason names enum numbers: ``ros2 param set /dehaze_node strength 1`` (the CLI reads ``1`` as
an integer) answered ``Wrong parameter type, expected '3' got '2'``. The nodes' ``set_parameters``
and ``set_parameters_atomically`` (what the parameter services, ``ros2 param set`` / ``load`` and
rqt call) check the type first and refuse with the wording of the parameter-file check
(``strength: 1 is an integer, the parameter is a double (write 1.0: ...)``). A start-up value
(``-p strength:=1``) is refused by rclpy while the node declares it; :func:`refusal` rewords that
exception the same way. Nothing is converted: a start-up value cannot be, and a live set that
accepted what the launch-time check refuses would teach the wrong habit.
"""

from __future__ import annotations

import re
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter

from snn_perception.ros import params_file

# a value of each declared type our nodes use, for params_file.type_error's wording
_EXAMPLES: dict[Parameter.Type, Any] = {
    Parameter.Type.BOOL: False,
    Parameter.Type.INTEGER: 0,
    Parameter.Type.DOUBLE: 0.0,
    Parameter.Type.STRING: "",
    Parameter.Type.STRING_ARRAY: [],
}


def type_refusal(node: Any, param: Parameter) -> SetParametersResult | None:
    """The refusal of ``param`` for a type other than its declared one (None: rclpy decides)."""
    if param.type_ == Parameter.Type.NOT_SET or not node.has_parameter(param.name):
        return None
    descriptor = node.describe_parameter(param.name)
    if descriptor.dynamic_typing or param.type_.value == descriptor.type:
        return None
    example = _EXAMPLES.get(Parameter.Type(descriptor.type))
    if example is None:
        return None
    reason = params_file.type_error(param.name, param.value, example)
    return None if reason is None else SetParametersResult(successful=False, reason=reason)


class ClearTypeRefusals:
    """Mixin for a ``Node`` / ``LifecycleNode``: wrong types refused with :func:`type_refusal`."""

    def set_parameters(self, parameter_list: list[Parameter]) -> list[SetParametersResult]:
        results = []
        for p in parameter_list:  # one at a time, as rclpy does (a comprehension hides super's class)
            results.append(type_refusal(self, p) or super().set_parameters([p])[0])
        return results

    def set_parameters_atomically(self, parameter_list: list[Parameter]) -> SetParametersResult:
        for p in parameter_list:
            refused = type_refusal(self, p)
            if refused is not None:
                return refused
        return super().set_parameters_atomically(parameter_list)


_RCLPY_TYPE_REFUSAL = re.compile(
    r"Trying to set parameter '(?P<name>[^']+)' to '(?P<value>.*)' of type '(?P<given>\w+)', "
    r"expecting type '(?P<declared>\w+)'",
    re.DOTALL,
)


def refusal(exc: Exception) -> str:
    """A start-up value rclpy refused, in one line: a wrong type as :func:`type_refusal` words it
    (``strength: 1 is an integer, the parameter is a double (write 1.0 ...)``), else rclpy's text."""
    text = " ".join(str(exc).split())
    m = _RCLPY_TYPE_REFUSAL.match(text)
    given = Parameter.Type.__members__.get(m["given"]) if m else None
    declared = Parameter.Type.__members__.get(m["declared"]) if m else None
    if given is None or declared not in _EXAMPLES:
        return text
    raw = m["value"]
    parse = {
        Parameter.Type.INTEGER: int,
        Parameter.Type.DOUBLE: float,
        Parameter.Type.BOOL: lambda v: v == "True",
    }
    try:
        value = parse.get(given, str)(raw)
    except ValueError:
        return text
    return params_file.type_error(m["name"], value, _EXAMPLES[declared]) or text
