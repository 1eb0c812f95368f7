"""Persistence of the fines module on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from fines.models import (
    Evidence,
    Notice,
    NoticeHistory,
    OffenceCandidate,
    Passage,
    ReviewItem,
)
from fines.review import change_notice, reject
from fines.service import FinesPolicy, packaged_rules, record_decision, settle_due
from lez.core.events import DecisionEvent, FrameRef, PassageEvent, VehicleRecord
from lez.core.plates import plate_hash

pytestmark = pytest.mark.integration
NOW_MS = int(datetime.now(UTC).timestamp() * 1000)
POLICY = FinesPolicy(rules=packaged_rules(), auto_issue_threshold=0.9, latency_months=3)
NOW = datetime(2030, 1, 2, tzinfo=UTC)



def decision(
    plate: str,
    at: str,
    kind: str = "violation",
    *,
    camera: str = "CAM-1",
    seq: int = 0,
    confidence: float = 0.99,
    phase: str = "2022",
    vin: str = "",
) -> DecisionEvent:
    when = datetime.fromisoformat(at)
    notice_kind = {"violation": "fine", "warning": "warning"}.get(kind, None)
    if kind == "unregistered_foreign":
        notice_kind = "unregistered_foreign"
    amount = {"fine": 350, "warning": 0, "unregistered_foreign": 150}.get(notice_kind or "", 0)
    passage = PassageEvent(
        passage_id=f"{camera}:{seq}",
        camera_id=camera,
        captured_at=when,
        frames=(
            FrameRef(seq=seq, captured_at=when, broker_ts_ms=NOW_MS),
            FrameRef(
                seq=seq + 1,
                captured_at=when + timedelta(milliseconds=250),
                broker_ts_ms=NOW_MS + 250,
            ),
        ),
        plate=plate,
        country="BE",
        confidence=confidence,
        format_valid=True,
        agreeing_frames=2,
        country_source="band",
        evidence=(b"\xff\xd8jpeg0", b"\xff\xd8jpeg1"),
    )
    return DecisionEvent(
        passage=passage,
        decision=kind,  # type: ignore[arg-type]
        rule=f"phase-{phase}.diesel",
        explanation="test",
        vehicle=VehicleRecord(plate=plate, country="BE", vin=vin, fuel="diesel", euro_norm=3),
        phase=phase,
        notice_kind=notice_kind,  # type: ignore[arg-type]
        amount_eur=amount,
        settle_after=when + timedelta(days=2),
        decided_at=datetime.now(UTC),
    )


def store(sessions: sessionmaker[Session], *decisions: DecisionEvent) -> list[bool]:
    out = []
    for d in decisions:
        with sessions.begin() as s:
            out.append(record_decision(s, d, POLICY))
    return out


def settle_all(sessions: sessionmaker[Session], covered: set[str] = frozenset()) -> list[Notice]:
    return settle_due(
        sessions,
        now=datetime(2030, 1, 1, tzinfo=UTC),
        policy=POLICY,
        day_pass=lambda plate, country, at: plate in covered,
    )


class TestRecordDecision:
    def test_redelivered_decision_is_stored_once(self, sessions: sessionmaker[Session]) -> None:
        d = decision("1-ABC-123", "2023-05-02T08:10:00+02:00")
        assert store(sessions, d, d) == [True, False]
        settle_all(sessions)
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(Passage)) == 1
            assert s.scalar(select(func.count()).select_from(Notice)) == 1

    def test_compliant_passage_keeps_no_image(self, sessions: sessionmaker[Session]) -> None:
        store(sessions, decision("2-KLM-456", "2023-05-02T08:12:00+02:00", "compliant"))
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00", seq=5))
        with sessions() as s:
            kept = s.scalars(select(Evidence.passage_id).distinct()).all()
        assert kept == ["CAM-1:5"]

    def test_times_round_trip_as_aware_utc(self, sessions: sessionmaker[Session]) -> None:
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"))
        with sessions() as s:
            p = s.scalars(select(Passage)).one()
        assert p.captured_at == datetime(2023, 5, 2, 6, 10, tzinfo=UTC)
        assert p.captured_at.tzinfo is not None


class TestSettle:
    def test_fine_issued_with_history(self, sessions: sessionmaker[Session]) -> None:
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"))
        [n] = settle_all(sessions)
        assert (n.kind, n.amount_eur, n.status) == ("fine", 350, "issued")
        assert n.due_date is not None
        with sessions() as s:
            h = s.scalars(select(NoticeHistory)).one()
        assert (h.to_status, h.actor) == ("issued", "system")

    def test_three_month_latency(self, sessions: sessionmaker[Session]) -> None:
        # Stored out of order on purpose: settlement goes by offence time.
        store(
            sessions,
            decision("2-PNA-963", "2023-12-15T16:43:00+01:00", seq=4),
            decision("2-PNA-963", "2023-10-05T16:43:00+01:00", seq=2),
            decision("2-PNA-963", "2023-08-13T16:43:00+01:00", seq=0),
        )
        notices = settle_all(sessions)
        assert sorted(n.offence_at.date().isoformat() for n in notices) == [
            "2023-08-13",
            "2023-12-15",
        ]

    def test_latency_ends_exactly_three_calendar_months_later(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(
            sessions,
            decision("1-ABC-123", "2023-05-02T08:10:00+02:00", seq=0),
            decision("1-ABC-123", "2023-08-02T08:09:59+02:00", seq=2),
            decision("1-ABC-123", "2023-08-02T08:10:00+02:00", seq=4),
        )
        notices = settle_all(sessions)
        assert [n.passage_id for n in sorted(notices, key=lambda n: n.offence_at)] == [
            "CAM-1:0",
            "CAM-1:4",
        ]

    def test_one_warning_per_phase(self, sessions: sessionmaker[Session]) -> None:
        store(
            sessions,
            decision("1-DEF-234", "2022-02-10T09:30:00+01:00", "warning", seq=0),
            decision("1-DEF-234", "2022-03-01T09:30:00+01:00", "warning", seq=2),
        )
        notices = settle_all(sessions)
        assert [(n.kind, n.amount_eur) for n in notices] == [("warning", 0)]

    def test_day_pass_drops_the_fine(self, sessions: sessionmaker[Session]) -> None:
        store(sessions, decision("2-GHJ-567", "2023-06-14T12:00:00+02:00"))
        assert settle_all(sessions, covered={"2-GHJ-567"}) == []

    def test_not_settled_before_the_day_pass_window_closes(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"))
        early = settle_due(
            sessions,
            now=datetime(2023, 5, 3, 12, 0, tzinfo=UTC),
            policy=POLICY,
            day_pass=lambda *a: False,
        )
        assert early == []
        assert len(settle_all(sessions)) == 1

    def test_registry_down_leaves_candidates_waiting(self, sessions: sessionmaker[Session]) -> None:
        from lez.core.errors import RegistryUnavailable

        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"))

        def down(*_a: object) -> bool:
            raise RegistryUnavailable("test", retry_after=1)

        with pytest.raises(RegistryUnavailable):
            settle_due(sessions, now=datetime(2030, 1, 1, tzinfo=UTC), policy=POLICY, day_pass=down)
        assert len(settle_all(sessions)) == 1

    def test_doubtful_read_goes_to_review_not_issued(self, sessions: sessionmaker[Session]) -> None:
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00", confidence=0.6))
        [n] = settle_all(sessions)
        assert n.status == "pending_review"
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(ReviewItem)) == 1

    def test_one_notice_per_passage_is_enforced_by_the_database(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(sessions, decision("1-ABC-123", "2023-05-02T08:10:00+02:00"))
        [n] = settle_all(sessions)
        from sqlalchemy.exc import IntegrityError

        with pytest.raises(IntegrityError), sessions.begin() as s:
            s.execute(
                text(
                    "INSERT INTO notices (notice_id, passage_id, plate, plate_norm, country, "
                    "kind, amount_eur, offence_at, camera_id, status, explanation, created_at) "
                    "SELECT 'dup', passage_id, plate, plate_norm, country, kind, amount_eur, "
                    "offence_at, camera_id, status, explanation, created_at FROM notices"
                )
            )
        assert n.notice_id


class TestDayPassWindow:
    def test_a_warning_waits_for_the_day_pass_window(self, sessions: sessionmaker[Session]) -> None:
        when = "2022-02-10T09:30:00+01:00"
        # The adapter used to send warnings with settle_after = capture time.
        d = decision("1-DEF-234", when, "warning")
        store(sessions, d.model_copy(update={"settle_after": d.passage.captured_at}))
        early = settle_due(
            sessions,
            now=datetime.fromisoformat("2022-02-11T23:00:00+01:00"),
            policy=POLICY,
            day_pass=lambda *a: False,
        )
        assert early == []
        assert [n.kind for n in settle_all(sessions)] == ["warning"]

    def test_a_warning_covered_by_a_day_pass_is_dropped(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(sessions, decision("1-DEF-234", "2022-02-10T09:30:00+01:00", "warning"))
        assert settle_all(sessions, covered={"1-DEF-234"}) == []
        with sessions() as s:
            cand = s.scalars(select(OffenceCandidate)).one()
        assert (cand.state, cand.outcome) == ("dropped", "covered by an exemption or a day pass")


def _cancel(sessions: sessionmaker[Session], notice_id: str) -> None:
    with sessions.begin() as s:
        change_notice(
            s,
            notice_id,
            "cancelled",
            actor="sam",
            reason="wrong camera",
            policy=POLICY,
            now=datetime(2030, 1, 2, tzinfo=UTC),
        )


class TestNoticesThatStand:
    def test_a_cancelled_notice_releases_the_offences_it_held_back(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(
            sessions,
            decision("2-PNA-963", "2023-08-13T16:43:00+02:00", seq=0),
            decision("2-PNA-963", "2023-10-05T16:43:00+02:00", seq=2),
        )
        [first] = settle_all(sessions)
        with sessions() as s:
            held = s.get(OffenceCandidate, "CAM-1:2")
            assert held is not None and (held.state, held.held_by) == ("held", first.notice_id)
        _cancel(sessions, first.notice_id)
        [again] = settle_all(sessions)
        assert (again.passage_id, again.status) == ("CAM-1:2", "issued")
        with sessions() as s:
            closed = s.get(Notice, first.notice_id)
            assert closed is not None and closed.closed_at is not None

    def test_released_offences_never_make_two_fines_within_three_months(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(
            sessions,
            decision("2-PNA-963", "2023-08-13T16:43:00+02:00", seq=0),
            decision("2-PNA-963", "2023-10-05T16:43:00+02:00", seq=2),
            decision("2-PNA-963", "2023-12-15T16:43:00+01:00", seq=4),
        )
        first, last = sorted(settle_all(sessions), key=lambda n: n.offence_at)
        _cancel(sessions, first.notice_id)
        # Judged in time order, October now makes the notice and December (within three
        # months of it) is superseded: never two standing fines within three months.
        [october] = settle_all(sessions)
        assert october.passage_id == "CAM-1:2"
        with sessions() as s:
            december = s.get(Notice, last.notice_id)
            assert december is not None and december.status == "superseded"
            held = s.get(OffenceCandidate, "CAM-1:4")
            assert held is not None and (held.state, held.held_by) == ("held", october.notice_id)

    def test_a_notice_rejected_in_review_releases_what_it_held_back(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(
            sessions,
            decision("1-ABC-123", "2023-05-02T08:10:00+02:00", seq=0, confidence=0.5),
            decision("1-ABC-123", "2023-06-02T08:10:00+02:00", seq=2),
        )
        [pending] = settle_all(sessions)
        assert pending.status == "pending_review"
        with sessions.begin() as s:
            item = s.scalars(select(ReviewItem)).one()
            reject(s, item.id, actor="olga", reason="not this car", policy=POLICY, now=NOW)
        [issued] = settle_all(sessions)
        assert (issued.passage_id, issued.status) == ("CAM-1:2", "issued")

    def test_a_cancelled_warning_releases_the_next_warning_of_its_phase(
        self, sessions: sessionmaker[Session]
    ) -> None:
        store(
            sessions,
            decision("1-DEF-234", "2022-02-10T09:30:00+01:00", "warning", seq=0),
            decision("1-DEF-234", "2022-03-01T09:30:00+01:00", "warning", seq=2),
        )
        [first] = settle_all(sessions)
        _cancel(sessions, first.notice_id)
        [second] = settle_all(sessions)
        assert (second.passage_id, second.kind) == ("CAM-1:2", "warning")


class TestPrivacy:
    def test_compliant_passage_keeps_only_a_keyed_hash_of_the_plate(
        self, sessions: sessionmaker[Session]
    ) -> None:
        policy = FinesPolicy(rules=packaged_rules(), plate_hash_key=b"secret")
        with sessions.begin() as s:
            record_decision(
                s, decision("2-KLM-456", "2023-05-02T08:12:00+02:00", "compliant"), policy
            )
            record_decision(s, decision("1-ABC-123", "2023-05-02T08:10:00+02:00", seq=4), policy)
        with sessions() as s:
            compliant = s.get(Passage, "CAM-1:0")
            violation = s.get(Passage, "CAM-1:4")
        assert compliant is not None and violation is not None
        assert compliant.plate is None and compliant.reads == []
        assert compliant.plate_norm == plate_hash(b"secret", "2-KLM-456", "BE")
        assert "2KLM456" not in str(compliant.plate_norm)
        assert compliant.vehicle == {"category": "M1", "fuel": "diesel", "euro_norm": 3}
        assert violation.plate == "1-ABC-123" and violation.vehicle["plate"] == "1-ABC-123"

    def test_replays_may_keep_compliant_plates(self, sessions: sessionmaker[Session]) -> None:
        policy = FinesPolicy(rules=packaged_rules(), keep_compliant_plates=True)
        with sessions.begin() as s:
            record_decision(
                s, decision("2-KLM-456", "2023-05-02T08:12:00+02:00", "compliant"), policy
            )
        with sessions() as s:
            assert s.get(Passage, "CAM-1:0").plate == "2-KLM-456"  # type: ignore[union-attr]


def test_a_passage_stored_meanwhile_by_another_process_is_skipped(
    sessions: sessionmaker[Session],
) -> None:
    d = decision("1-ABC-123", "2023-05-02T08:10:00+02:00")
    with sessions.begin() as other:  # another fines process, first
        record_decision(other, d, POLICY)
    with sessions.begin() as s:
        # This process looked before the other committed: force the insert path.
        s.get = lambda *a, **k: None  # type: ignore[method-assign]
        assert record_decision(s, d, POLICY) is False
        s.add(ReviewItem(passage_id="CAM-1:0", reasons=["still usable"]))
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Passage)) == 1
        assert s.scalar(select(func.count()).select_from(ReviewItem)) == 1


def test_a_decision_is_stored_whole_or_not_at_all(sessions: sessionmaker[Session]) -> None:
    """A fines process killed after storing a passage but before its commit leaves nothing:
    on SQLite the savepoint around the passage's insert used to commit it on its own
    (pysqlite begins no transaction before the first statement, so the outermost SAVEPOINT's
    RELEASE commits), and the redelivered decision then found its passage stored and made no
    offence candidate: a lost notice (seen in a chaos run)."""
    d = decision("1-ABC-123", "2023-05-02T08:10:00+02:00")
    s = sessions()
    s.begin()
    assert record_decision(s, d, POLICY) is True
    s.rollback()  # the process dies before its commit
    s.close()
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Passage)) == 0
        assert s.scalar(select(func.count()).select_from(OffenceCandidate)) == 0
    with sessions.begin() as s:  # redelivered: stored whole
        assert record_decision(s, d, POLICY) is True
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Passage)) == 1
        assert s.scalar(select(func.count()).select_from(OffenceCandidate)) == 1
