"""A run's Kafka identities are its own: two runs with their own topic prefix on one cluster (a
replay beside production, two tests on the session's broker) never share a consumer group or a
``transactional.id``; and a stage member's ready file says it holds partitions now."""

from __future__ import annotations

from pathlib import Path

from lez.app.broker import ready_file, ready_listener
from lez.app.settings import Settings
from lez.core.bus import stage_transactions
from lez.core.names import FIDUS_ADAPTER, STAGES


def test_each_stage_group_carries_the_topic_prefix(tmp_path: Path) -> None:
    production = Settings(var_dir=tmp_path)
    replay = Settings(var_dir=tmp_path, topic_prefix="t1234.")
    assert production.group(FIDUS_ADAPTER) == "lez.fidus-adapter"
    assert replay.group(FIDUS_ADAPTER) == "t1234.fidus-adapter"
    ours = {production.group(s) for s in STAGES}
    theirs = {replay.group(s) for s in STAGES}
    assert len(ours) == len(STAGES) and not ours & theirs


def test_transactional_ids_of_two_prefixes_differ(tmp_path: Path) -> None:
    ids = []
    for prefix in ("lez.", "t1234."):
        s = Settings(var_dir=tmp_path, topic_prefix=prefix, kafka_transactions=True)
        tx = stage_transactions(s, s.group(FIDUS_ADAPTER))
        assert tx is not None
        ids.append(tx.transactional_id)
    assert ids[0] != ids[1] and ids[1].startswith("t1234.fidus-adapter.")


def test_the_ready_file_is_gone_while_a_rebalance_holds_the_partitions(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    group = settings.group(FIDUS_ADAPTER)
    listener = ready_listener(settings, group)
    marker = ready_file(settings, group)
    listener.on_partitions_assigned({"plates-0"})
    assert marker.exists()
    listener.on_partitions_revoked({"plates-0"})
    assert not marker.exists(), "a member whose partitions were taken is not ready"
    listener.on_partitions_assigned(set())
    assert not marker.exists(), "an empty assignment is not ready either"
    listener.on_partitions_assigned({"plates-1"})
    assert marker.exists()
