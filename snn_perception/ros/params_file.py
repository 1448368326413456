"""ROS 2 parameter YAML files read as rcl reads them, and checked against our nodes' parameters.

Why: ``ros2 launch … params_file:=FILE`` hands the file to each node, where a bad value (``timesteps:
100``, ``strength: 1`` for a double) ends that node with a traceback after the launch has started,
a misspelt name (``timestep``) is silently ignored, and a broken YAML kills every node. The launch
file and ``bringup`` read the file here first, so they can refuse it in one line before any node
starts, warn about names no node reads, and know the values the nodes will get (``autostart``,
``input_transport``) to wire them. Light on purpose (no rclpy, no torch): the launch process imports it.

Matching follows rcl (checked against rclpy): a key is a node's fully qualified name with ``/``
prepended when missing (``dehaze_node`` is ``/dehaze_node``, in the root namespace only), nested
keys join into namespaces (``rov: {dehaze_node: …}`` is ``/rov/dehaze_node``), ``*`` matches one
name token and ``**`` any number; entries apply in the order each key first appears, later wins,
and nested parameter maps are dotted names (``qos_overrides./topic.subscription.depth``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_EXPECTED = "expected a ROS 2 parameter YAML (node name: {ros__parameters: {...}})"
#: parameters every rclpy node understands besides its own
_ROS_PARAMS = ("use_sim_time", "start_type_description_service")
_ROS_PREFIXES = ("qos_overrides.",)
_TOKEN = re.compile(r"^([A-Za-z0-9_]+|\*|\*\*)$")  # what rcl accepts between the slashes of a key


class ParamsFileError(ValueError):
    """The file cannot be read as a ROS 2 parameter YAML, or holds values a node would refuse."""


@dataclass(frozen=True)
class ParamsFile:
    """A parameter file's entries, (node name pattern, {parameter: value}), in rcl's order."""

    path: Path
    entries: tuple[tuple[str, dict[str, Any]], ...]

    def for_node(self, fq_name: str) -> dict[str, Any]:
        """The values node ``fq_name`` (e.g. ``/rov/dehaze_node``) gets from this file."""
        out: dict[str, Any] = {}
        for pattern, params in self.entries:
            if matches(pattern, fq_name):
                out.update(params)
        return out

    def sources(self, fq_name: str, name: str) -> list[str]:
        """The keys that give node ``fq_name`` parameter ``name`` (for messages)."""
        return [p for p, params in self.entries if name in params and matches(p, fq_name)]


EMPTY = ParamsFile(Path(), ())


class _MergingLoader(yaml.SafeLoader):
    """A SafeLoader that merges a mapping key given twice (two ``/**:`` entries), as rcl does,
    where PyYAML would keep only the last."""


def _merge(old: dict, new: dict) -> dict:
    out = dict(old)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict:
    loader.flatten_mapping(node)
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        value = loader.construct_object(value_node, deep=True)
        both = isinstance(out.get(key), dict) and isinstance(value, dict)
        out[key] = _merge(out[key], value) if both else value  # a repeated key keeps its first place
    return out


_MergingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _normal(key: str) -> str:
    key = key.strip()
    return key if key.startswith("/") else "/" + key


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def load(path: Path | str) -> ParamsFile:
    """Read ``path``; :class:`ParamsFileError` says in one line why it is not a parameter YAML."""
    path = Path(path)
    try:
        text = path.expanduser().read_bytes().decode("utf-8")
    except OSError as exc:
        raise ParamsFileError(f"parameter file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise ParamsFileError(
            f"parameter file {path} is not a text file (not UTF-8: an image or other binary?); {_EXPECTED}"
        ) from None
    try:
        data = yaml.load(text, Loader=_MergingLoader) or {}  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise ParamsFileError(f"parameter file {path} is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(data, dict):
        raise ParamsFileError(f"parameter file {path}: {_EXPECTED}, got a {type(data).__name__}")
    merged: dict[str, dict[str, Any]] = {}  # insertion order = first appearance, as rcl applies them

    def walk(prefix: str, node: dict) -> None:
        for key, body in node.items():
            name = f"{prefix}/{str(key).strip('/')}" if prefix else _normal(str(key))
            bad = [t for t in name.split("/")[1:] if not _TOKEN.match(t)]
            if bad:
                raise ParamsFileError(
                    f"parameter file {path}: entry {name!r}: {bad[0]!r} is not a node name or namespace "
                    "(letters, digits and _, or a whole * or ** as a wildcard)"
                )
            if isinstance(body, dict) and "ros__parameters" in body:
                params = body["ros__parameters"] or {}
                if not isinstance(params, dict):
                    raise ParamsFileError(
                        f"parameter file {path}: {name}'s ros__parameters is a "
                        f"{type(params).__name__}; give name: value lines under it"
                    )
                flat: dict[str, Any] = {}
                _flatten("", params, flat)
                merged.setdefault(name, {}).update(flat)
            elif isinstance(body, dict) and body and all(isinstance(v, dict) for v in body.values()):
                walk(name, body)  # a namespace level: rov: {dehaze_node: {ros__parameters: ...}}
            else:
                raise ParamsFileError(
                    f"parameter file {path}: entry {name!r} has no 'ros__parameters'; {_EXPECTED}"
                )

    walk("", data)
    return ParamsFile(path, tuple(merged.items()))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, in one line (PyYAML's own message spans several with a caret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context})" if context else "")


def matches(pattern: str, fq_name: str) -> bool:
    """Whether rcl applies an entry keyed ``pattern`` to the node ``fq_name``."""
    regex = {"**": "(/[^/]+)*", "*": "/[^/]+"}
    parts = [regex.get(t, "/" + re.escape(t)) for t in _normal(pattern).split("/") if t]
    return re.fullmatch("".join(parts) or "/?", _normal(fq_name)) is not None


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a double"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def type_error(name: str, value: Any, default: Any) -> str | None:
    """Why rclpy would refuse ``value`` for a parameter declared with ``default`` (None = same type)."""
    if isinstance(default, list):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return None
        return f"{name}: {value!r} is {type_name(value)}; give a list of strings"
    if type(value) is type(default):
        return None
    hint = ""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        hint = f" (write {value}.0: ROS does not turn an integer into a double)"
    elif isinstance(default, str):
        hint = f' (quote it: "{value}")'
    elif isinstance(default, bool):
        hint = " (true or false)"
    return f"{name}: {value!r} is {type_name(value)}, the parameter is {type_name(default)}{hint}"


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known parameter ``name`` is most likely a misspelling of (None: none is close)."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return close[0] if close else None


def misspelt(given: Iterable[str], schema: NodeSchema) -> list[str]:
    """Warnings for the names in ``given`` a node does not read but that are close to one it does.

    For a running node, which cannot tell which entry of a file set a name: a ``/**`` entry may
    hold other nodes' parameters, so only near misses are worth a warning.
    """
    out = []
    for name in given:
        if name in schema.siblings:
            continue  # e.g. the shipped file's /** input_transport, for the perception nodes
        if not schema.known(name) and (close := closest(name, schema.defaults)):
            out.append(f"parameter {name!r} is not read by this node (ignored); did you mean {close!r}?")
    return out


@dataclass(frozen=True)
class NodeSchema:
    """What a node reads: each parameter's default (its type) and a value check (None = fine)."""

    defaults: Mapping[str, Any]
    check: Any  # (name, value) -> str | None, called once the type is right
    dynamic: frozenset[str] = frozenset()  # declared with dynamic typing: any type, check() decides
    #: names the package's other nodes read: a ``/**`` entry setting one is not a typo for this node
    siblings: frozenset[str] = frozenset()

    def known(self, name: str) -> bool:
        return name in self.defaults or name in _ROS_PARAMS or name.startswith(_ROS_PREFIXES)


def check(
    pf: ParamsFile, nodes: Mapping[str, NodeSchema], overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for the nodes ``{fq name: schema}`` that will read ``pf``.

    ``overrides``: {fq name: names given over the file} (launch arguments, command-line flags):
    a bad file value they replace is not an error, as the node never sees it. The callers check
    their own arguments, so that each refusal names where the value came from.

    Errors are values the node would refuse at start-up (wrong type, out of range, not a choice);
    warnings name parameters no node reads, with the closest known name when there is one (an entry
    for every node, ``/**``, may hold other nodes' parameters, so there only near misses are named,
    and not the names another node of the package reads).
    """
    errors: dict[str, list[str]] = {}  # reason -> the nodes it applies to (a /** entry: all of them)
    warnings: list[str] = []
    for fq, schema in nodes.items():
        replaced = (overrides or {}).get(fq, {})
        for name, value in pf.for_node(fq).items():
            if name in replaced:
                continue
            if not schema.known(name):
                close = closest(name, schema.defaults)
                keys = pf.sources(fq, name)
                for_all = all("*" in k for k in keys)
                if not for_all or (close and name not in schema.siblings):
                    hint = f"; did you mean {close!r}?" if close else ""
                    warnings.append(
                        f"{fq} has no parameter {name!r} (set by {', '.join(keys)}, ignored){hint}"
                    )
                continue
            if name not in schema.defaults:
                continue  # a ROS parameter (use_sim_time, qos_overrides.*): rclpy checks those
            typed = name in schema.dynamic or type_error(name, value, schema.defaults[name]) is None
            reason = schema.check(name, value) if typed else type_error(name, value, schema.defaults[name])
            if reason is not None:
                errors.setdefault(reason, []).append(fq)
    return [f"{', '.join(fqs)}: {reason}" for reason, fqs in errors.items()], warnings
