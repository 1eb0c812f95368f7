"""The edge spool: order, bounds, what a full spool drops (counted), restart survival."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from camera_ingest.spool import Spool
from lez.core.events import FrameEvent

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def _frame(seq: int, size: int = 100) -> FrameEvent:
    return FrameEvent(
        camera_id="CAM",
        seq=seq,
        captured_at=T0 + timedelta(seconds=seq),
        jpeg=b"\xff\xd8" + b"x" * size + b"\xff\xd9",
    )


def _seqs(spool: Spool) -> list[int]:
    return [e.frame.seq for e in spool.peek(10_000)]


def test_fifo_and_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for i in range(5):
        assert spool.put(_frame(i))
    head = spool.peek(2)
    assert [e.frame.seq for e in head] == [0, 1]
    spool.ack(head)
    assert _seqs(spool) == [2, 3, 4]
    assert head[0].frame == _frame(0)


def test_survives_a_restart_in_order_with_its_counters(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=3)
    for i in range(5):
        spool.put(_frame(i))
    assert spool.stats.dropped == 2
    again = Spool(tmp_path, max_frames=3)
    assert _seqs(again) == [2, 3, 4]
    assert again.stats.dropped == 2 and again.stats.last_dropped == "CAM#1"
    again.put(_frame(5))
    assert _seqs(again) == [3, 4, 5]
    assert again.stats.dropped == 3


def test_full_spool_drops_the_oldest_by_default_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=2)
    for i in range(4):
        assert spool.put(_frame(i))
    assert _seqs(spool) == [2, 3]
    assert spool.stats.dropped == 2 and spool.stats.dropped_bytes > 0


def test_full_spool_can_drop_the_newest_instead(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_frames=2, drop="newest")
    results = [spool.put(_frame(i)) for i in range(4)]
    assert results == [True, True, False, False]
    assert _seqs(spool) == [0, 1]
    assert spool.stats.dropped == 2 and spool.stats.last_dropped == "CAM#3"


def test_byte_bound(tmp_path: Path) -> None:
    one = len(_frame(0).to_bytes()) + 100
    spool = Spool(tmp_path, max_bytes=one * 3)
    for i in range(10):
        spool.put(_frame(i))
    assert len(spool) <= 3 and spool.bytes <= one * 3
    assert spool.stats.dropped == 10 - len(spool)
    big = Spool(tmp_path / "b", max_bytes=50)
    assert not big.put(_frame(0)), "a frame larger than the whole spool is dropped, counted"
    assert big.stats.dropped == 1


def test_interrupted_write_and_corrupt_entry_are_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.put(_frame(0))
    spool.put(_frame(1))
    (tmp_path / "0000000000000099.frame.tmp").write_bytes(b"half")
    first = sorted(tmp_path.glob("*.frame"))[0]
    first.write_bytes(b"garbage")
    again = Spool(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))
    assert _seqs(again) == [1]
    assert again.stats.corrupt == 1
    assert list((tmp_path / "rejected").glob("*.reason"))


def test_needs_room(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path, max_frames=0)


def test_entries_older_than_the_maximum_age_are_dropped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_age=timedelta(days=7))
    spool.put(_frame(0), now=T0)
    spool.put(_frame(1), now=T0 + timedelta(days=6))
    spool.put(_frame(2), now=T0 + timedelta(days=7, hours=1))
    later = T0 + timedelta(days=7, minutes=30)
    assert [e.frame.seq for e in spool.peek(10, now=later)] == [1, 2]
    assert spool.stats.expired == 1 and spool.stats.last_dropped == "CAM#0"
    assert len(spool) == 2
    assert Spool(tmp_path).stats.expired == 1, "the count survives a restart"
    # Without a maximum age nothing expires.
    assert len(Spool(tmp_path).peek(10, now=T0 + timedelta(days=3650))) == 2
