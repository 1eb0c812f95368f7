"""A small fines world for the notice lifecycle tests: the real fines service (record,
settle, cancel) on an in-memory SQLite schema, with decisions built from a few fields."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from fines.models import Base, Notice
from fines.review import change_notice
from fines.service import DayPassCheck, FinesPolicy, packaged_rules, record_decision, settle_due
from lez.core.events import DecisionEvent, Exemption, VehicleRecord
from tests.fakes import certain_passage

LATER = datetime(2031, 1, 1, tzinfo=UTC)
AMOUNTS = {"fine": 350, "warning": 0, "unregistered_foreign": 150}
DECISIONS = {
    "fine": "violation",
    "warning": "warning",
    "unregistered_foreign": "unregistered_foreign",
}


def decision(
    pid: str,
    plate: str,
    at: datetime,
    *,
    kind: str = "fine",
    vin: str = "",
    country: str = "BE",
    phase: str = "phase-2022",
) -> DecisionEvent:
    """A certain read of ``plate`` judged to make a ``kind`` notice."""
    passage = certain_passage(plate, country, at, pid=pid)
    vehicle = (
        None
        if kind == "unregistered_foreign"
        else VehicleRecord(plate=plate, country=country, vin=vin, fuel="diesel", euro_norm=3)
    )
    return DecisionEvent(
        passage=passage,
        decision=DECISIONS[kind],  # type: ignore[arg-type]
        rule=f"{phase}.diesel",
        vehicle=vehicle,
        phase=phase,
        notice_kind=kind,  # type: ignore[arg-type]
        amount_eur=AMOUNTS[kind],
        decided_at=at,
    )


@dataclass
class World:
    """The fines store, and the exemption records the registry holds."""

    sessions: sessionmaker[Session]
    policy: FinesPolicy = field(
        default_factory=lambda: FinesPolicy(rules=packaged_rules(), latency_months=3)
    )
    exemptions: list[Exemption] = field(default_factory=list)

    def record(self, *decisions: DecisionEvent) -> None:
        for d in decisions:
            with self.sessions.begin() as s:
                record_decision(s, d, self.policy)

    def settle(self, check: DayPassCheck | None = None, now: datetime = LATER) -> list[Notice]:
        return settle_due(
            self.sessions, now=now, policy=self.policy, day_pass=check or (lambda *a: False)
        )

    def cancel(self, passage_id: str) -> None:
        with self.sessions.begin() as s:
            n = s.scalars(select(Notice).where(Notice.passage_id == passage_id)).one()
            change_notice(
                s,
                n.notice_id,
                "cancelled",
                actor="sam",
                reason="test",
                policy=self.policy,
                now=LATER,
            )

    def standing(self) -> set[str]:
        """The passages whose notice stands."""
        with self.sessions() as s:
            rows = s.scalars(select(Notice)).all()
        return {n.passage_id for n in rows if n.status not in ("cancelled", "superseded")}

    def notices(self) -> Sequence[Notice]:
        with self.sessions() as s:
            return s.scalars(select(Notice).order_by(Notice.offence_at)).all()


def new_world() -> Iterator[World]:
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    Base.metadata.create_all(engine)
    try:
        yield World(sessionmaker(engine, expire_on_commit=False))
    finally:
        engine.dispose()
