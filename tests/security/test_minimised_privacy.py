"""Privacy finding (issue 21): a minimised passage kept other vehicles' plates.

Minimising a passage (no offence: a compliant or exempt vehicle, also a read corrected to one
in review) hashed its plate and dropped its reads, images and typed candidates, but its review
reasons (and its review item's) still named the candidate vehicles, look-alikes and other
countries, in clear; the operator's reason was stored as typed. Now every plate a minimised
passage's rows name is gone, and the database is scanned for them: every text column of every
table. The registry audit keeps a keyed hash, never the plate. A review rejected with no
offence is minimised the same way when its evidence retention ends. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from fines.db import make_engine, session_factory
from fines.models import Evidence, Passage, RegistryAudit, ReviewItem
from fines.registry_audit import SqlAuditSink, audit_plate_hash
from fines.review import correct_plate, reject
from fines.service import (
    FinesPolicy,
    packaged_rules,
    purge_closed_evidence,
    record_decision,
    settle_due,
)
from lez.core.events import CandidateVehicle, DecisionEvent, FrameRead, VehicleRecord
from lez.core.plates import normalize_plate, plate_hash
from lez.core.registry import AuditEntry, LookupResult
from lez.core.rules import RuleBook
from tests.fakes import FakeRegistry, FakeRelookup
from tests.integration.test_fines_db import decision

pytestmark = pytest.mark.integration
KEY = b"minimised-privacy-key"
POLICY = FinesPolicy(rules=packaged_rules(), plate_hash_key=KEY)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
READ = "1-ELE-272"  # what the reader made of the plate
PLATE = "1-ELE-222"  # the plate, as the operator corrects it: an electric car
LOOKALIKE = "1-ELE-772"  # a registered look-alike of the read
HOLDERS = ("Janssens", "Peeters", "Rue Neuve")
PLATES = (READ, PLATE, LOOKALIKE)
REASONS = (
    "low confidence read (0.50, not above 0.90)",
    f"registered look-alike (2/7 confusion): {LOOKALIKE} (BE): Toyota Yaris, petrol Euro 6, "
    "would be compliant",
    f"registered under another country the read fits: {normalize_plate(READ)} (NL): several "
    "vehicles in the registry",
)
CANDIDATES = (
    CandidateVehicle(
        plate=normalize_plate(LOOKALIKE), country="BE", source="lookalike", detail="2/7",
        make="Toyota", model="Yaris", fuel="petrol", euro_norm=6, outcome="compliant",
    ),
    CandidateVehicle(
        plate=normalize_plate(READ), country="NL", source="other_country", outcome="ambiguous"
    ),
)  # fmt: skip
ELECTRIC = VehicleRecord(
    plate=PLATE,
    country="BE",
    vin="VIN-E",
    make="Tesla",
    fuel="electric",
    holder_name="A. Janssens",
    holder_address="Rue Neuve 2, 1000 Brussels",
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _doubtful(kind: str = "violation") -> DecisionEvent:
    """The read ``READ``, doubtful, with a look-alike and another country registered, its
    holder named and a read per frame."""
    d = decision(READ, "2023-05-04T08:10:00+02:00", kind, confidence=0.5)
    reads = tuple(
        FrameRead(seq=f.seq, text=READ, country="BE", confidence=0.5, char_confidences=(0.5,) * 7)
        for f in d.passage.frames
    )
    holder = {"holder_name": "P. Peeters", "holder_address": "Rue Neuve 9, 1000 Brussels"}
    assert d.vehicle is not None
    return d.model_copy(
        update={
            "passage": d.passage.model_copy(update={"reads": reads}),
            "vehicle": d.vehicle.model_copy(update=holder),
            "review_reasons": REASONS,
            "candidates": CANDIDATES,
        }
    )


def _audit_lookups(sessions: sessionmaker[Session], *lookups: tuple[str, str]) -> None:
    """What the FIDUS adapter's registry calls write (through the fines stage's sink)."""
    sink = SqlAuditSink(sessions, KEY)
    for plate, country in lookups:
        sink.record(
            AuditEntry(
                authority="BXL-FISCALITE",
                actor="lez-pipeline",
                plate=plate,
                country=country,
                purpose="lez_enforcement",
                at=NOW,
                result="found",
                detail="at=2023-05-04T06:10:00Z exemptions=0",
            )
        )


class _AuditedRelookup(FakeRelookup):
    """The console's relookup: the registry asked as the operator, audited."""

    sessions: sessionmaker[Session] | None = None

    def __call__(self, plate: str, country: str, at: datetime, *, actor: str) -> LookupResult:
        assert self.sessions is not None
        _audit_lookups(self.sessions, (plate, country))
        return super().__call__(plate, country, at, actor=actor)


def _clear_text(
    engine: Engine, plates: tuple[str, ...] = PLATES, words: tuple[str, ...] = HOLDERS
) -> list[str]:
    """Every cell of every table (text, JSON, bytes alike) that names one of ``plates``
    (compared normalised: ``1 ele 222`` is ``1-ELE-222``) or of ``words``."""
    norms = {normalize_plate(p) for p in plates}
    found: list[str] = []
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    cell = (
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
                    hits = [p for p in norms if p in normalize_plate(cell)]
                    hits += [w for w in words if w.casefold() in cell.casefold()]
                    if hits:
                        found.append(f"{table}.{column}: {hits} in {cell[:160]!r}")
    return found


def _review_item(sessions: sessionmaker[Session]) -> int:
    settle_due(sessions, now=NOW, policy=POLICY, day_pass=lambda *a: False)
    with sessions() as s:
        return s.scalars(select(ReviewItem.id)).one()


def test_a_passage_corrected_to_a_compliant_vehicle_leaves_no_plate_in_the_database(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        record_decision(s, _doubtful(), POLICY)
    _audit_lookups(sessions, (READ, "BE"), (LOOKALIKE, "BE"), (READ, "NL"))
    item_id = _review_item(sessions)
    relookup = _AuditedRelookup(FakeRegistry({normalize_plate(PLATE): ELECTRIC}))
    relookup.sessions = sessions
    correct_plate(
        sessions,
        item_id,
        plate=PLATE.lower(),
        country="BE",
        actor="olga",
        reason=f"the plate reads {PLATE}, not {LOOKALIKE} (1 ele 272 is a misread)",
        relookup=relookup,
        rules=RuleBook.load(),
        policy=POLICY,
        now=lambda: NOW,
    )
    with sessions() as s:
        passage = s.get(Passage, "CAM-1:0")
        audit = s.scalars(select(RegistryAudit.plate_hash)).all()
    assert passage is not None and passage.decision == "exempt" and passage.candidates == []
    assert len(audit) == 4 and audit_plate_hash(KEY, PLATE) in audit  # keyed hashes only
    assert _clear_text(engine) == []


def test_a_compliant_passage_keeps_no_plate_its_reasons_name(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    compliant = _doubtful().model_copy(
        update={"decision": "compliant", "notice_kind": None, "amount_eur": 0}
    )
    with sessions.begin() as s:
        record_decision(s, compliant, POLICY)
    assert _clear_text(engine) == []


def test_a_review_rejected_with_no_offence_is_minimised_when_its_retention_ends(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        record_decision(s, _doubtful(), POLICY)
    item_id = _review_item(sessions)
    retention = timedelta(days=180)
    with sessions.begin() as s:
        reject(s, item_id, actor="olga", reason=f"not {LOOKALIKE}: unreadable", policy=POLICY,
               now=NOW)  # fmt: skip
    with sessions.begin() as s:  # within the retention: the case is kept as it was
        purge_closed_evidence(
            s, now=NOW + retention - timedelta(days=1), retention=retention, plate_hash_key=KEY
        )
    assert _clear_text(engine, (READ,), ()) != []
    with sessions.begin() as s:
        purge_closed_evidence(
            s, now=NOW + retention + timedelta(days=1), retention=retention, plate_hash_key=KEY
        )
    assert _clear_text(engine) == []


def test_an_offence_a_day_pass_covers_is_minimised_when_it_is_dropped(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """No offence after all (an exemption or a day pass, checked when the window closes): an
    exempt passage, minimised like one; before, its images and plates stayed for good (no
    notice or review to close, so no retention ever ran)."""
    with sessions.begin() as s:
        record_decision(s, _doubtful(), POLICY)
    assert settle_due(sessions, now=NOW, policy=POLICY, day_pass=lambda *a: True) == []
    with sessions() as s:
        passage = s.get(Passage, "CAM-1:0")
        assert passage is not None and passage.plate_norm == plate_hash(KEY, READ, "BE")
        assert s.scalar(select(func.count()).select_from(Evidence)) == 0
    assert _clear_text(engine) == []
