"""rosbag2 (sqlite3 and MCAP) reading and writing without a ROS installation.

Built on the pure-Python ``rosbags`` library and its type store, so ``make-bag`` and the offline
replay run anywhere the models run. Images are ``sensor_msgs/msg/Image`` (``rgb8`` when we write;
rgb8, bgr8, rgba8, bgra8, mono8, mono16 and 8UC1/8UC3 when we read) or
``sensor_msgs/msg/CompressedImage`` (JPEG or PNG). Our ``EnergyTelemetry`` message is registered
from ``msg/EnergyTelemetry.msg`` so recorded telemetry can be read back too.

Everything a user can get wrong raises :class:`BagError` with a message that names the bag, the
topic and what is accepted; a frame that cannot be decoded is returned with its error instead of
stopping the replay.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from snn_perception.runtime.stamps import header_ns, split_ns

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
TELEMETRY_TYPE = "snn_perception/msg/EnergyTelemetry"
STORAGE_FORMATS = ("sqlite3", "mcap")
#: the ``format`` field image_transport's compressed publisher writes for colour JPEG/PNG
COMPRESSED_FORMATS = {"jpeg": "rgb8; jpeg compressed bgr8", "png": "rgb8; png compressed bgr8"}
#: the latest header stamp a ROS time holds (``builtin_interfaces/Time.sec`` is an int32)
MAX_STAMP_NS = (2**31 - 1) * 1_000_000_000 + 999_999_999
MAX_STAMP_TEXT = "2038-01-19T03:14:07Z: its seconds are an int32"


class BagError(Exception):
    """A bag, topic or message type the user asked for is missing or unusable."""


class DecodeError(ValueError):
    """One message could not be turned into an image (counted, never fatal)."""


# -- type store --------------------------------------------------------------------------------


def _telemetry_msg_text() -> str | None:
    """``EnergyTelemetry.msg`` from the source tree, or from an installed share/ folder."""
    candidates = [Path(__file__).resolve().parents[2] / "msg" / "EnergyTelemetry.msg"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / "snn_perception" / "msg" / "EnergyTelemetry.msg")
    for c in candidates:
        if c.is_file():
            return c.read_text()
    return None


@lru_cache(maxsize=1)
def typestore():
    """ROS 2 Kilted message types plus ``snn_perception/msg/EnergyTelemetry`` when its .msg is found."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    text = _telemetry_msg_text()
    if text is not None:
        store.register(get_types_from_msg(text, TELEMETRY_TYPE))
    return store


# -- bag paths and contents --------------------------------------------------------------------


@dataclass(frozen=True)
class TopicInfo:
    name: str
    msgtype: str
    count: int


@dataclass
class BagInfo:
    path: Path
    storage: str
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0

    @property
    def duration_s(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e9

    def describe_topics(self, names: list[str] | None = None) -> str:
        topics = [t for t in self.topics.values() if names is None or t.name in names]
        if not topics:
            return "(none)"
        return ", ".join(f"{t.name} [{t.msgtype}, {t.count} msgs]" for t in topics)

    def describe_image_topics(self) -> str:
        """The image topics first (what an image argument accepts), then any others."""
        images = self.image_topics()
        others = [t for t in self.topics if t not in images]
        text = f"image topics in the bag: {self.describe_topics(images)}" if images else "no image topic"
        if others:
            text += f"; other topics: {self.describe_topics(others)}"
        return text

    def image_topics(self) -> list[str]:
        return [t.name for t in self.topics.values() if t.msgtype in IMAGE_TYPES]


def resolve_bag_path(path: str | Path) -> Path:
    """A rosbag2 folder (with ``metadata.yaml``), or a ``.db3``/``.mcap`` file inside one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise BagError(f"bag {p} does not exist (expected a rosbag2 folder holding metadata.yaml)")
    if p.is_file():
        if p.suffix in (".db3", ".mcap") and (p.parent / "metadata.yaml").is_file():
            return p.parent
        raise BagError(f"{p} is not a rosbag2 bag: pass the bag folder that holds metadata.yaml")
    if not (p / "metadata.yaml").is_file():
        raise BagError(f"{p} is not a rosbag2 bag: no metadata.yaml in it (record with ros2 bag or make-bag)")
    return p


def _storage_of(bag: Path) -> str:
    import yaml

    try:
        meta = yaml.safe_load((bag / "metadata.yaml").read_text())
        storage = str(meta["rosbag2_bagfile_information"]["storage_identifier"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"{bag}/metadata.yaml is not rosbag2 metadata ({exc})") from None
    if storage not in STORAGE_FORMATS:
        raise BagError(
            f"{bag}: storage format {storage!r} is not supported; accepted: {', '.join(STORAGE_FORMATS)}"
        )
    return storage


def _open_reader(bag: Path):
    from rosbags.rosbag2 import Reader, ReaderError

    reader = Reader(bag)
    try:
        reader.open()
    except ReaderError as exc:
        raise BagError(f"{bag}: cannot be read as a rosbag2 bag ({exc})") from None
    return reader


def bag_info(path: str | Path) -> BagInfo:
    bag = resolve_bag_path(path)
    storage = _storage_of(bag)
    reader = _open_reader(bag)
    try:
        info = BagInfo(path=bag, storage=storage, start_ns=reader.start_time, end_ns=reader.end_time)
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for conn in reader.connections:
            counts[conn.topic] = counts.get(conn.topic, 0) + conn.msgcount
            types[conn.topic] = conn.msgtype
        info.topics = {t: TopicInfo(t, types[t], counts[t]) for t in sorted(types)}
    finally:
        reader.close()
    return info


def check_image_topic(info: BagInfo, topic: str, what: str = "topic") -> TopicInfo:
    """The topic's info, or a :class:`BagError` listing the image topics that do exist / the types
    accepted. ``what`` names the argument that gave the topic (``--reference-topic``…)."""
    if topic not in info.topics:
        raise BagError(f"{what} {topic!r} is not in {info.path}; {info.describe_image_topics()}")
    t = info.topics[topic]
    if t.msgtype not in IMAGE_TYPES:
        raise BagError(
            f"{what} {topic!r} in {info.path} has type {t.msgtype}; "
            f"expected {IMAGE_TYPE} or {COMPRESSED_TYPE}"
        )
    return t


def default_image_topic(info: BagInfo, exclude: tuple[str, ...] = ()) -> str:
    """The one camera image topic: image topics named '*reference*' or '*mask*' are ground truth,
    as are those in ``exclude`` (the topics given as ground truth)."""
    images = info.image_topics()
    cams = [t for t in images if "reference" not in t and "mask" not in t and t not in exclude]
    if len(cams) == 1:
        return cams[0]
    if not cams and not images:
        raise BagError(f"{info.path} holds no image topic; topics in the bag: {info.describe_topics()}")
    if not cams:
        taken = [t for t in images if t in exclude]
        why = f"{', '.join(taken)} given as ground truth, " if taken else ""
        raise BagError(
            f"{info.path} holds no camera image topic ({why}topics named '*reference*' or '*mask*' are "
            f"ground truth); {info.describe_image_topics()}; choose the camera topic with --topic"
        )
    raise BagError(f"{info.path} holds several image topics ({', '.join(cams)}); choose one with --topic")


def default_reference_topic(info: BagInfo) -> str | None:
    refs = [t for t in info.image_topics() if "reference" in t]
    return refs[0] if len(refs) == 1 else None


# -- image messages ↔ arrays -------------------------------------------------------------------


def decode_image(msg: Any, msgtype: str) -> np.ndarray:
    """A deserialised image message → ``H×W×3`` uint8 RGB (raises :class:`DecodeError`).

    Uses the nodes' own codec (:mod:`snn_perception.runtime.image_codec`), so a frame decodes in a
    replay exactly as it does on the robot.
    """
    from snn_perception.runtime import image_codec

    try:
        if msgtype == COMPRESSED_TYPE:
            return image_codec.decode_compressed(str(msg.format), np.ascontiguousarray(msg.data, np.uint8))
        return image_codec.decode_image(
            str(msg.encoding),
            msg.height,
            msg.width,
            msg.step,
            msg.is_bigendian,
            np.ascontiguousarray(msg.data, np.uint8),
        )
    except image_codec.ImageDecodeError as exc:
        raise DecodeError(str(exc)) from None


def check_stamp(stamp_ns: int) -> int:
    """A header stamp a ROS time can hold (0 … :data:`MAX_STAMP_NS`), else :class:`BagError`."""
    if not 0 <= stamp_ns <= MAX_STAMP_NS:
        raise BagError(
            f"stamp {stamp_ns} ns is outside what a ROS time holds "
            f"(0 … {MAX_STAMP_NS} ns, up to {MAX_STAMP_TEXT})"
        )
    return stamp_ns


def _header(stamp_ns: int, frame_id: str):
    check_stamp(int(stamp_ns))
    store = typestore()
    Header = store.types["std_msgs/msg/Header"]
    Time = store.types["builtin_interfaces/msg/Time"]
    sec, nanosec = split_ns(stamp_ns)
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_message(
    rgb: np.ndarray,
    stamp_ns: int,
    frame_id: str = "camera",
    compressed: str | None = None,
    jpeg_quality: int = 95,
):
    """``H×W×3`` uint8 RGB → a ``sensor_msgs/msg/Image`` (rgb8) or ``CompressedImage`` (jpeg/png);
    ``H×W`` uint8 (e.g. class ids) → a ``mono8`` Image, always uncompressed so every value stays exact."""
    gray = rgb.ndim == 2
    if rgb.dtype != np.uint8 or not (gray or (rgb.ndim == 3 and rgb.shape[2] == 3)):
        raise ValueError(f"image must be H×W×3 uint8 RGB or H×W uint8 (mono8), got {rgb.shape} {rgb.dtype}")
    if gray and compressed is not None:
        raise ValueError("a mono8 (H×W) image is written uncompressed: its values must stay exact")
    store = typestore()
    header = _header(stamp_ns, frame_id)
    if compressed is None:
        h, w = rgb.shape[:2]
        return store.types[IMAGE_TYPE](
            header=header,
            height=h,
            width=w,
            encoding="mono8" if gray else "rgb8",
            is_bigendian=0,
            step=w if gray else w * 3,
            data=np.ascontiguousarray(rgb).reshape(-1),
        )
    if compressed not in COMPRESSED_FORMATS:
        raise ValueError(
            f"compressed format must be one of {', '.join(COMPRESSED_FORMATS)}, got {compressed!r}"
        )
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if compressed == "jpeg" else []
    ok, enc = cv2.imencode(".jpg" if compressed == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ValueError("image could not be encoded")
    return store.types[COMPRESSED_TYPE](
        header=header, format=COMPRESSED_FORMATS[compressed], data=enc.reshape(-1)
    )


# -- writing -----------------------------------------------------------------------------------


def check_new_bag(path: str | Path, storage: str = "sqlite3") -> Path:
    """Where a new bag can be written: a path that does not exist yet, in an existing folder."""
    if storage not in STORAGE_FORMATS:
        raise BagError(f"storage format {storage!r} is not supported; accepted: {', '.join(STORAGE_FORMATS)}")
    p = Path(path).expanduser()
    if p.exists():
        raise BagError(f"output bag {p} already exists; choose a new path or remove it")
    if not p.parent.is_dir():
        raise BagError(f"cannot write bag {p}: folder {p.parent} does not exist")
    return p


class BagWriter:
    """Write messages to a new rosbag2 folder (``storage`` 'sqlite3' or 'mcap'); a context manager.

    A write that fails (or is interrupted) inside the ``with`` block removes the bag: a partial
    bag is never left behind looking complete.
    """

    def __init__(self, path: str | Path, storage: str = "sqlite3") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = check_new_bag(path, storage)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.storage = storage
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        existed = self.path.exists()  # created since __init__ by someone else: never ours to remove
        try:
            self._writer.open()
        except Exception as exc:  # WriterError, OSError: the folder cannot be created or written
            if not existed:
                self._discard()
            raise BagError(f"cannot write bag {self.path}: {exc}") from None
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            try:
                self._writer.close()
            except BaseException:
                self._discard()
                raise
            return
        with contextlib.suppress(Exception):
            self._writer.close()
        self._discard()

    def _discard(self) -> None:
        """Remove the (partial) bag this writer created."""
        shutil.rmtree(self.path, ignore_errors=True)

    def add_topic(self, topic: str, msgtype: str) -> None:
        if topic in self._connections:
            return
        if msgtype not in typestore().types:
            raise BagError(f"message type {msgtype} is unknown to the bag writer (topic {topic})")
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        self.counts[topic] = 0

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        conn = self._connections[topic]
        self.write_serialized(topic, typestore().serialize_cdr(msg, conn.msgtype), log_time_ns)

    def write_serialized(self, topic: str, data: bytes, log_time_ns: int) -> None:
        """Write a message already in CDR bytes (e.g. as rclpy received it) on an added ``topic``."""
        self._writer.write(self._connections[topic], int(log_time_ns), data)
        self.counts[topic] += 1

    def write_image(
        self,
        topic: str,
        rgb: np.ndarray,
        stamp_ns: int,
        frame_id: str = "camera",
        compressed: str | None = None,
    ) -> None:
        self.add_topic(topic, COMPRESSED_TYPE if compressed else IMAGE_TYPE)
        self.write(topic, image_message(rgb, stamp_ns, frame_id, compressed), stamp_ns)


# -- reading -----------------------------------------------------------------------------------


@dataclass
class BagImage:
    """One image message: ``rgb`` is None and ``error`` says why when it could not be decoded."""

    index: int
    stamp_ns: int  # header stamp (0 when the message could not be deserialised)
    log_time_ns: int  # when the bag recorded it
    rgb: np.ndarray | None = None
    error: str | None = None
    frame_id: str = ""


def iter_images(path: str | Path, topic: str) -> Iterator[BagImage]:
    """Images of ``topic`` in recording order; undecodable ones carry their error."""
    bag = resolve_bag_path(path)
    _storage_of(bag)
    store = typestore()
    reader = _open_reader(bag)
    try:
        conns = [c for c in reader.connections if c.topic == topic]
        if not conns:
            raise BagError(f"topic {topic!r} is not in {bag}")
        for i, (conn, log_ns, raw) in enumerate(reader.messages(connections=conns)):
            if conn.msgtype not in IMAGE_TYPES:
                raise BagError(
                    f"topic {topic!r} has type {conn.msgtype}; expected {IMAGE_TYPE} or {COMPRESSED_TYPE}"
                )
            item = BagImage(index=i, stamp_ns=0, log_time_ns=int(log_ns))
            try:
                msg = store.deserialize_cdr(raw, conn.msgtype)
            except Exception as exc:
                item.error = f"message could not be deserialised ({type(exc).__name__}: {exc})"
                yield item
                continue
            item.stamp_ns, item.frame_id = header_ns(msg.header), str(msg.header.frame_id)
            try:
                item.rgb = decode_image(msg, conn.msgtype)
            except DecodeError as exc:
                item.error = str(exc)
            yield item
    finally:
        reader.close()


def iter_messages(path: str | Path, topics: list[str] | None = None) -> Iterator[tuple[str, str, int, Any]]:
    """(topic, msgtype, log_time_ns, deserialised message) for every message (of ``topics``)."""
    bag = resolve_bag_path(path)
    store = typestore()
    reader = _open_reader(bag)
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, log_ns, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, int(log_ns), store.deserialize_cdr(raw, conn.msgtype)
    finally:
        reader.close()
