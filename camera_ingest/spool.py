"""The edge spool: a bounded on-disk FIFO of frames waiting to be delivered.

Every frame goes through the spool (write-ahead), so the order of a camera's frames is kept
across outages and restarts: the sender reads from the head and removes an entry only after
the broker or the gateway acknowledged it. One file per frame (``<n>.frame``: a JSON header
line, then the ``lez.frame/1`` record), written to a temporary name, fsynced and renamed, so
that a crash leaves either the whole entry or none.

When the spool is full, the oldest (default) or the newest frame is dropped; drops are counted
in ``stats.json`` next to the entries, which survives a restart like the entries do. An entry
older than ``max_age`` (``LEZ_FRAME_MAX_AGE_S``; the gateway refuses older captures) is
dropped from the head and counted as expired.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from lez.core.errors import EventError
from lez.core.events import FrameEvent, parse_event

log = logging.getLogger(__name__)
SUFFIX = ".frame"
DropPolicy = Literal["oldest", "newest"]


@dataclass(frozen=True)
class SpoolEntry:
    index: int
    frame: FrameEvent
    # Edge clock when the frame entered the spool (for skew and age).
    spooled_at: datetime
    size: int


@dataclass
class SpoolStats:
    dropped: int = 0
    dropped_bytes: int = 0
    rejected: int = 0
    corrupt: int = 0
    expired: int = 0
    last_dropped: str | None = None


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_frames: int = 10_000,
        max_bytes: int = 1024 * 1024 * 1024,
        drop: DropPolicy = "oldest",
        fsync: bool = True,
        max_age: timedelta | None = None,
    ) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("the spool needs room for at least one frame")
        self.directory = directory
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self.drop = drop
        self.fsync = fsync
        self.max_age = max_age
        self._lock = threading.Condition()
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "rejected").mkdir(exist_ok=True)
        for tmp in directory.glob("*.tmp"):
            tmp.unlink()  # a write that a crash interrupted: never acknowledged to anyone
        self._sizes: dict[int, int] = {
            int(p.name[: -len(SUFFIX)]): p.stat().st_size
            for p in directory.glob(f"*{SUFFIX}")
            if p.name[: -len(SUFFIX)].isdigit()
        }
        self._next = max(self._sizes, default=-1) + 1
        self.stats = self._load_stats()

    # -- bookkeeping -------------------------------------------------------------------
    @property
    def _stats_path(self) -> Path:
        return self.directory / "stats.json"

    def _load_stats(self) -> SpoolStats:
        try:
            return SpoolStats(**json.loads(self._stats_path.read_text()))
        except FileNotFoundError:
            return SpoolStats()
        except (ValueError, TypeError) as exc:
            log.warning("spool %s: unreadable stats.json (%s); counting from zero", self, exc)
            return SpoolStats()

    def _save_stats(self) -> None:
        self._write(self._stats_path, json.dumps(self.stats.__dict__).encode())

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            if self.fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _path(self, index: int) -> Path:
        return self.directory / f"{index:016d}{SUFFIX}"

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

    def __repr__(self) -> str:
        return f"Spool({self.directory})"

    # -- queue -------------------------------------------------------------------------
    def put(self, frame: FrameEvent, *, now: datetime | None = None) -> bool:
        """Append a frame; False when it was dropped because the spool is full (newest)."""
        header = json.dumps({"spooled_at": (now or datetime.now(UTC)).isoformat()}).encode()
        data = header + b"\n" + frame.to_bytes()
        with self._lock:
            while self._sizes and (
                len(self._sizes) >= self.max_frames
                or sum(self._sizes.values()) + len(data) > self.max_bytes
            ):
                if self.drop == "newest":
                    self._count_drop(frame.key, len(data))
                    return False
                oldest = min(self._sizes)
                self._count_drop(self._key_of(oldest), self._sizes[oldest])
                self._remove(oldest)
            if len(data) > self.max_bytes:
                self._count_drop(frame.key, len(data))
                return False
            index = self._next
            self._next += 1
            self._write(self._path(index), data)
            self._sizes[index] = len(data)
            self._lock.notify_all()
        return True

    def _key_of(self, index: int) -> str:
        try:
            entry = self._read(index)
        except (OSError, EventError, ValueError):
            return f"entry {index}"
        return entry.frame.key

    def _count_drop(self, key: str, size: int) -> None:
        self.stats.dropped += 1
        self.stats.dropped_bytes += size
        self.stats.last_dropped = key
        self._save_stats()
        log.warning("spool %s full: dropped frame %s (%d dropped so far)", self, key,
                    self.stats.dropped)

    def _remove(self, index: int) -> None:
        self._path(index).unlink(missing_ok=True)
        self._sizes.pop(index, None)

    def _read(self, index: int) -> SpoolEntry:
        raw = self._path(index).read_bytes()
        header, _, body = raw.partition(b"\n")
        meta = json.loads(header)
        return SpoolEntry(
            index=index,
            frame=parse_event(FrameEvent, body, topic=str(self.directory), offset=index),
            spooled_at=datetime.fromisoformat(meta["spooled_at"]),
            size=len(raw),
        )

    def peek(self, n: int = 1, *, now: datetime | None = None) -> list[SpoolEntry]:
        """Up to ``n`` entries from the head, in order (unreadable entries are set aside,
        expired ones dropped)."""
        out: list[SpoolEntry] = []
        oldest = (now or datetime.now(UTC)) - self.max_age if self.max_age else None
        with self._lock:
            for index in sorted(self._sizes):
                if len(out) >= n:
                    break
                try:
                    entry = self._read(index)
                except (OSError, EventError, ValueError, KeyError) as exc:
                    self._set_aside(index, f"corrupt spool entry: {exc}", corrupt=True)
                    continue
                if oldest is not None and entry.spooled_at < oldest:
                    self._expire(entry)
                else:
                    out.append(entry)
        return out

    def _expire(self, entry: SpoolEntry) -> None:
        self._remove(entry.index)
        self.stats.expired += 1
        self.stats.last_dropped = entry.frame.key
        self._save_stats()
        log.warning("spool %s: frame %s spooled at %s is older than %s: dropped", self,
                    entry.frame.key, entry.spooled_at.isoformat(), self.max_age)

    def wait(self, timeout_s: float) -> bool:
        """Block until the spool holds something (or the timeout); True when it does."""
        with self._lock:
            return self._lock.wait_for(lambda: bool(self._sizes), timeout=timeout_s)

    def ack(self, entries: list[SpoolEntry]) -> None:
        """Remove delivered entries."""
        with self._lock:
            for e in entries:
                self._remove(e.index)

    def reject(self, entry: SpoolEntry, reason: str) -> None:
        """Set aside an entry the receiver refused for good (kept in ``rejected/``)."""
        with self._lock:
            self._set_aside(entry.index, reason, corrupt=False)

    def _set_aside(self, index: int, reason: str, *, corrupt: bool) -> None:
        src = self._path(index)
        dst = self.directory / "rejected" / src.name
        try:
            os.replace(src, dst)
            dst.with_suffix(".reason").write_text(reason + "\n")
        except OSError:
            src.unlink(missing_ok=True)
        self._sizes.pop(index, None)
        if corrupt:
            self.stats.corrupt += 1
        else:
            self.stats.rejected += 1
        self._save_stats()
        log.error("spool %s: set aside entry %d: %s", self, index, reason)
