"""rosbag2 files in and out (``rosbags``; mcap and sqlite3 storage), with clear errors.

``InputBag`` opens a bag folder (or one ``.mcap`` / ``.db3`` file), names its topics and yields
their messages, serialised, in recorded order. Every problem of the file, at opening or half
way through, is one ``BagError`` naming the file and what is wrong. An mcap file that ends
early (a recording that was killed: no summary, no footer) cannot be opened by ``rosbags``; it
is read record by record with the ``mcap`` library instead, up to where it breaks, and the
``BagError`` at that point says how many messages came before it.

``OutputBag`` writes a new bag. It is closed properly on every way out, errors and Ctrl-C
included, so that what was written stays readable (``rosbags``' own context manager drops the
index and ``metadata.yaml`` after an error).

Messages are (de)serialised by rclpy (``deserialize``, ``serialize``), so they are the very
message objects, and bytes, that the node receives and publishes.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

STORAGES = ("mcap", "sqlite3")
_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}


class BagError(ValueError):
    """A bag that cannot be read or written; the message names the file and the problem."""


class BadMessage(ValueError):
    """One message that cannot be deserialised."""


@dataclass(frozen=True)
class BagTopic:
    """One topic of a bag: its type, message count (None when unknown) and definition."""

    name: str
    msgtype: str
    count: int | None
    msgdef: str = ""  # ros2msg text; "" when the bag does not hold it
    rihs01: str = ""  # type hash; "" when the bag does not hold it
    offered_qos: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BagMessage:
    """One serialised message and its bag time (receive time, ns)."""

    topic: str
    timestamp: int
    data: bytes


def message_class(msgtype: str) -> type:
    """The rclpy message class of ``pkg/msg/Name``."""
    package, _, name = msgtype.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise BadMessage(f"message type {msgtype} is not installed") from error


def msgtype_of(message: Any) -> str:
    """``pkg/msg/Name`` of an rclpy message or message class."""
    cls = message if isinstance(message, type) else type(message)
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def deserialize(message: BagMessage, msgtype: str) -> Any:
    """The rclpy message of ``msgtype`` in ``message``; ``BadMessage`` when it is corrupt."""
    from rclpy.serialization import deserialize_message

    cls = message_class(msgtype)
    try:
        return deserialize_message(message.data, cls)
    except Exception as error:  # rclpy raises its RMWError (a RuntimeError) or others
        raise BadMessage(
            f"corrupt {msgtype} message at bag time {message.timestamp} on {message.topic} "
            f"({len(message.data)} bytes): {_describe(error)}"
        ) from error


def serialize(message: Any) -> bytes:
    """The CDR bytes of an rclpy message, as it goes over the wire."""
    from rclpy.serialization import serialize_message

    return serialize_message(message)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.rstrip(".")


def _storage_files(path: Path) -> list[Path]:
    """The storage files of a bag folder (or the file itself)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES)


def storage_of(path: str | Path) -> str:
    """``mcap`` or ``sqlite3``: the storage of the bag at ``path``."""
    path = Path(path)
    kinds = {_SUFFIXES[p.suffix] for p in _storage_files(path) if p.suffix in _SUFFIXES}
    if len(kinds) != 1:
        found = "no .mcap or .db3 file" if not kinds else "both .mcap and .db3 files"
        raise BagError(f"bag {path}: {found}; is it a rosbag2 folder?")
    return kinds.pop()


class InputBag:
    """A rosbag2 to read; use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        self.storage = storage_of(self.path)
        self.topics: dict[str, BagTopic] = {}
        self.salvage_reason: str | None = None  # why it is read record by record, if it is
        self._reader: Any = None
        self._salvage: _McapSalvage | None = None

    def open(self) -> InputBag:
        """Open the bag and read its topics."""
        from rosbags.rosbag2 import Reader

        source = self.path
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            files = _storage_files(self.path)
            if len(files) != 1:
                raise BagError(f"bag {self.path} has no metadata.yaml and {len(files)} files")
            source = files[0]
        try:
            reader = Reader(source)
            reader.open()
        except Exception as error:  # whatever the storage layer raises: the file is bad
            if self.storage != "mcap":
                raise BagError(f"cannot read bag {self.path}: {_describe(error)}") from error
            self._salvage = _McapSalvage(_storage_files(self.path), _describe(error))
            self.topics = self._salvage.scan_topics()
            self.salvage_reason = self._salvage.why
            return self
        self._reader = reader
        self.topics = {
            name: BagTopic(
                name,
                info.msgtype or "",
                info.msgcount,
                info.msgdef.data,
                info.connections[0].digest if info.connections else "",
                tuple(info.connections[0].ext.offered_qos_profiles) if info.connections else (),
            )
            for name, info in reader.topics.items()
        }
        return self

    def close(self) -> None:
        """Close the bag."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def __enter__(self) -> InputBag:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def topic(self, name: str, msgtypes: Collection[str]) -> BagTopic:
        """The topic ``name``, which must have one of ``msgtypes``; else a ``BagError`` that
        lists the topics the bag has."""
        found = self.topics.get(name)
        if found is None:
            listing = ", ".join(f"{t.name} ({t.msgtype})" for t in self.topics.values())
            raise BagError(f"bag {self.path} has no topic {name}; it has: {listing or 'none'}")
        if found.msgtype not in msgtypes:
            raise BagError(
                f"topic {name} of bag {self.path} is {found.msgtype}, not one of "
                f"{', '.join(sorted(msgtypes))}"
            )
        return found

    def messages(self, topics: Collection[str]) -> Iterator[BagMessage]:
        """The messages of ``topics`` in recorded order; a broken file raises ``BagError``
        after the messages read before the break."""
        if self._salvage is not None:
            yield from self._salvage.messages(topics, self.path)
            return
        if self._reader is None:
            raise BagError(f"bag {self.path} is not open")
        connections = [c for c in self._reader.connections if c.topic in topics]
        iterator = self._reader.messages(connections=connections) if connections else iter(())
        count = 0
        while True:
            try:
                connection, timestamp, data = next(iterator)
            except StopIteration:
                return
            except Exception as error:  # whatever the storage layer raises: the file is bad
                raise BagError(
                    f"bag {self.path} is corrupt after {count} messages: {_describe(error)}"
                ) from error
            count += 1
            yield BagMessage(connection.topic, timestamp, bytes(data))


@dataclass
class _McapSalvage:
    """Reads mcap files record by record, as far as they go (``mcap.StreamReader``)."""

    files: list[Path]
    why: str  # why rosbags could not open them
    _stop: str | None = field(default=None, init=False)

    def _records(self) -> Iterator[Any]:
        """Every record of every file; the first error is kept in ``_stop`` and ends it."""
        from mcap.stream_reader import StreamReader

        self._stop = None
        for path in self.files:
            with path.open("rb") as stream:
                records = StreamReader(stream).records
                while True:
                    try:
                        yield next(records)
                    except StopIteration:
                        break
                    except Exception as error:  # a broken or truncated record: stop here
                        why = "a record is cut off" if _is_end(error) else _describe(error)
                        self._stop = f"{path.name} ends early or is corrupt ({why})"
                        return

    def scan_topics(self) -> dict[str, BagTopic]:
        """The topics of the files, counting the messages that can be read."""
        from mcap.records import Channel, Message, Schema

        schemas: dict[int, Any] = {}
        channels: dict[int, Any] = {}
        counts: dict[int, int] = {}
        for record in self._records():
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                channels[record.id] = record
            elif isinstance(record, Message):
                counts[record.channel_id] = counts.get(record.channel_id, 0) + 1
        topics = {}
        for channel_id, channel in channels.items():
            schema = schemas.get(channel.schema_id)
            topics[channel.topic] = BagTopic(
                channel.topic,
                schema.name if schema else "",
                counts.get(channel_id, 0),
                schema.data.decode("utf-8", errors="replace") if schema else "",
            )
        if not topics:
            raise BagError(f"cannot read bag {', '.join(map(str, self.files))}: {self.why}")
        return topics

    def messages(self, topics: Collection[str], path: Path) -> Iterator[BagMessage]:
        """The messages of ``topics`` up to the break, then a ``BagError`` naming it."""
        from mcap.records import Channel, Message

        names: dict[int, str] = {}
        count = 0
        for record in self._records():
            if isinstance(record, Channel):
                names[record.id] = record.topic
            elif isinstance(record, Message) and names.get(record.channel_id) in topics:
                count += 1
                yield BagMessage(names[record.channel_id], record.log_time, bytes(record.data))
        if self._stop is not None:
            raise BagError(
                f"bag {path} is truncated or corrupt: {self._stop}; read {count} messages of "
                "the wanted topics before it"
            )


def _is_end(error: BaseException) -> bool:
    from mcap.exceptions import EndOfFile

    return isinstance(error, EndOfFile)


def _typestore() -> Any:
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.LATEST)


def _register_installed(typestore: Any, package: str) -> None:
    """Add every message of an installed ROS package (``share/<package>/msg/*.msg``)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from rosbags.typesys import get_types_from_msg

    try:
        folder = Path(get_package_share_directory(package)) / "msg"
    except PackageNotFoundError as error:
        raise BagError(f"no message definitions of {package} are installed") from error
    types: dict[str, Any] = {}
    for path in sorted(folder.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    typestore.register(types)


class OutputBag:
    """A new rosbag2 in ``storage`` (``mcap`` or ``sqlite3``); use as a context manager."""

    def __init__(self, path: str | Path, storage: str) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"unknown storage {storage!r}; choose one of {', '.join(STORAGES)}")
        if self.path.exists():
            raise BagError(f"output {self.path} already exists; remove it or choose another")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.storage = storage
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Any] = {}
        self._typestore = _typestore()
        self.counts: dict[str, int] = {}

    def open(self) -> OutputBag:
        """Create the bag folder and its storage file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer.open()
        except Exception as error:
            raise BagError(f"cannot create bag {self.path}: {_describe(error)}") from error
        return self

    def add_topic(self, topic: BagTopic) -> None:
        """Add a topic; its definition comes from the topic, the type store or the installed
        ROS package of its type."""
        if topic.name in self._connections:
            raise BagError(f"output bag {self.path} would get topic {topic.name} twice")
        msgdef, rihs01 = topic.msgdef, topic.rihs01
        if not (msgdef and rihs01):
            msgdef, rihs01 = self._definition(topic.msgtype, msgdef)
        self._connections[topic.name] = self._writer.add_connection(
            topic.name,
            topic.msgtype,
            msgdef=msgdef,
            rihs01=rihs01,
            offered_qos_profiles=topic.offered_qos,
        )
        self.counts[topic.name] = 0

    def _definition(self, msgtype: str, msgdef: str) -> tuple[str, str]:
        from rosbags.typesys import get_types_from_msg

        store = self._typestore
        try:
            if msgtype not in store.types:
                if msgdef:
                    store.register(get_types_from_msg(msgdef, msgtype))
                else:
                    _register_installed(store, msgtype.split("/")[0])
            return store.generate_msgdef(msgtype, ros_version=2)[0], store.hash_rihs01(msgtype)
        except BagError as error:
            raise BagError(f"cannot write {msgtype} into {self.path}: {error}") from error
        except Exception as error:
            raise BagError(
                f"cannot write {msgtype} into {self.path}: no usable message definition "
                f"({_describe(error)})"
            ) from error

    def write(self, topic: str, timestamp: int, data: bytes) -> None:
        """Write one serialised message at bag time ``timestamp`` (ns)."""
        self._writer.write(self._connections[topic], timestamp, data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Write the index and ``metadata.yaml``; the bag is complete and readable."""
        try:
            self._writer.close()
        except Exception as error:
            raise BagError(f"cannot finish bag {self.path}: {_describe(error)}") from error

    def __enter__(self) -> OutputBag:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()  # also after an error or Ctrl-C: what was written stays readable
