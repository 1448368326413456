"""Where already running nodes read their frames: their image subscriptions, as the ROS graph shows.

Why: a node started by ``ros2 launch`` reads a remapped topic (``/rov/camera/image_raw``), not its
``~/image``, so a replay into it (``replay --dehaze-node``) must publish there; it must also leave
alone a topic another target node feeds (the segmenter reading the dehazer's ``~/enhanced``), whose
frames arrive through that node with the bag's stamps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

IMAGE_TYPES = {False: "sensor_msgs/msg/Image", True: "sensor_msgs/msg/CompressedImage"}
#: how long a named node may take to appear in the graph (discovery on loopback takes ~1 s; 3× this
#: when no node at all is visible yet)
DISCOVERY_S = 5.0


class InputError(RuntimeError):
    """A target node cannot be fed from this bag; the message says why and what to change."""


def split_name(fq: str) -> tuple[str, str]:
    """``/rov/dehaze_node`` → (``dehaze_node``, ``/rov``)."""
    namespace, _, name = fq.rstrip("/").rpartition("/")
    return name, namespace or "/"


def choose(
    subscriptions: Mapping[str, Mapping[str, list[str]]],
    publications: Mapping[str, set[str]],
    compressed: bool,
    names: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Task → the topic to publish the bag's frames on (None: another target feeds it; '' : the node
    reads no image topic yet, e.g. it is not active). ``subscriptions``: task → {topic: types} of
    the node; ``publications``: task → the topics its node publishes; ``names``: task → node name,
    for messages."""
    wanted, other = IMAGE_TYPES[compressed], IMAGE_TYPES[not compressed]
    chosen: dict[str, str | None] = {}
    for task, subs in subscriptions.items():
        fed = set().union(*(pubs for t, pubs in publications.items() if t != task))
        mine = [topic for topic, types in subs.items() if wanted in types]
        if any(topic not in fed for topic in mine):
            chosen[task] = next(topic for topic in mine if topic not in fed)
        elif mine:
            chosen[task] = None
        elif theirs := [topic for topic, types in subs.items() if other in types]:
            kind, not_kind = ("compressed", "raw") if compressed else ("raw", "compressed")
            node = (names or {}).get(task, f"the {task} node")
            raise InputError(
                f"the bag's frames are {kind} ({wanted}), but {node} reads {other} on {theirs[0]}; "
                f"replay a {not_kind} image topic (--topic), or set the node's input_transport to {kind} "
                "(ros2 param set, then deactivate and activate)"
            )
        else:
            chosen[task] = ""
    return chosen


def discover(
    player,
    targets: Mapping[str, str],
    compressed: bool,
    timeout_s: float,
    failure: Callable[[], str | None] = lambda: None,
) -> dict[str, str]:
    """:func:`choose` for the running ``targets`` (task → fully qualified name), waiting up to
    ``timeout_s`` for each to subscribe to an image topic (a node appears in the graph within
    :data:`DISCOVERY_S` or is reported as not running; ``failure()``, a reason a node will never
    serve, ends the wait at once). A task another target feeds is left out of the result."""
    from rclpy.node import NodeNameNonExistentError  # rclpy's own re-export of the binding's error

    start = time.monotonic()
    while True:
        subs: dict[str, dict[str, list[str]]] = {}
        pubs: dict[str, set[str]] = {}
        missing = []
        for task, fq in targets.items():
            name, namespace = split_name(fq)
            try:
                subs[task] = dict(player.get_subscriber_names_and_types_by_node(name, namespace))
                pubs[task] = {t for t, _ in player.get_publisher_names_and_types_by_node(name, namespace)}
            except NodeNameNonExistentError:
                missing.append(fq)
        waited = time.monotonic() - start
        if reason := failure():
            raise InputError(reason)
        if missing and waited > DISCOVERY_S:
            # nothing at all in the graph yet: discovery may be slow on a busy machine, or the
            # domain differs; wait longer before saying which
            seen = ", ".join(sorted(f"{ns.rstrip('/')}/{name}" for name, ns in _nodes(player)))
            if seen:
                raise InputError(f"no node {', '.join(missing)} is running (nodes seen: {seen})")
            if waited > 3 * DISCOVERY_S:
                domain = os.environ.get("ROS_DOMAIN_ID", "0")
                raise InputError(
                    f"no node {', '.join(missing)} is running: no ROS node is visible at all in "
                    f"{waited:.0f} s (ROS_DOMAIN_ID={domain}; is it the nodes' domain?)"
                )
        if not missing:
            chosen = choose(subs, pubs, compressed, targets)
            idle = [targets[task] for task, topic in chosen.items() if topic == ""]
            if not idle:
                return {task: topic for task, topic in chosen.items() if topic}
            if waited > timeout_s:
                raise InputError(
                    f"timed out after {timeout_s:.0f} s waiting for {', '.join(idle)} to subscribe to an "
                    f"image topic (is it active? ros2 lifecycle set {idle[0]} activate)"
                )
        time.sleep(0.1)


def _nodes(player) -> list[tuple[str, str]]:
    """The graph's nodes but the tools' own (this player, the ros2 daemon)."""
    ours = (player.get_name(), "_")
    return [(name, ns) for name, ns in player.get_node_names_and_namespaces() if not name.startswith(ours)]
