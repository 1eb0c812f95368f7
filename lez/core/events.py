"""Typed events at every stage boundary. JSON on the wire, each with a schema version.

frame (lez.frames, keyed by camera) -> passage read (lez.plates) -> decision (lez.decisions)
-> notice (persisted by ``fines``). Anything a stage cannot handle goes to lez.deadletter.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Annotated, Final, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from lez.core.errors import EventError

FRAME_SCHEMA: Final = "lez.frame/1"
PASSAGE_SCHEMA: Final = "lez.passage/1"
DECISION_SCHEMA: Final = "lez.decision/1"
DEADLETTER_SCHEMA: Final = "lez.deadletter/1"
HOTLIST_SCHEMA: Final = "lez.hotlist/1"

Decision = Literal[
    "compliant", "exempt", "violation", "warning", "unregistered_foreign", "review", "unreadable"
]
EVIDENCE_DECISIONS: Final = frozenset({"violation", "warning", "unregistered_foreign", "review"})
"""Decisions whose frames are kept as evidence (suspected offences and doubtful cases)."""
NoticeKind = Literal["fine", "warning", "unregistered_foreign"]
Fuel = Literal[
    "petrol", "diesel", "lpg", "cng", "electric", "hydrogen", "petrol_hybrid", "diesel_hybrid"
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


E = TypeVar("E", bound="_Event")


def _b64_in(value: object) -> object:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not valid base64: {exc}") from exc
    return value


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_b64_in),
    PlainSerializer(lambda b: base64.b64encode(b).decode(), return_type=str, when_used="json"),
]
"""Raw bytes in Python, base64 text in JSON."""


class FrameEvent(_Event):
    """One JPEG frame from one camera."""

    schema_: Literal["lez.frame/1"] = Field(default=FRAME_SCHEMA, alias="schema")
    camera_id: Annotated[str, Field(min_length=1, max_length=64)]
    seq: Annotated[int, Field(ge=0)]
    captured_at: AwareDatetime
    jpeg: Base64Bytes

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def key(self) -> str:
        """Idempotency key of the frame: camera id and sequence number."""
        return f"{self.camera_id}#{self.seq}"


class FrameRef(_Event):
    seq: int
    captured_at: AwareDatetime
    # When the frame reached the broker (record timestamp, ms since epoch).
    broker_ts_ms: int
    partition: int = -1
    offset: int = -1


CountrySource = Literal["band", "colour", "layout", "format", "none"]
"""How a read's country was established: the country code in the plate's EU band, the plate's
colours (yellow NL/LU, red BE characters) with its layout, a layout no other European country
prints (``layout``: a grey infrared frame of ``1-ABC-123``, which only Belgium prints), or the
text's layout where other countries print it too (``format``: not established), or not at all
(``none``)."""

ESTABLISHED_COUNTRY_SOURCES: frozenset[str] = frozenset({"band", "colour", "layout"})


class FrameRead(_Event):
    """What the reader made of one frame (best candidate), kept for review and voting."""

    seq: int
    text: str | None
    country: str | None = None
    confidence: float = 0.0
    country_source: CountrySource = "none"
    # Per character of the normalised text: how sure the reader is of it (a look-alike plate
    # is ruled out only by characters read above the threshold on two frames).
    char_confidences: tuple[float, ...] = ()
    # What the frame shows of the plate's country: the code read in its EU band (and how
    # clearly), its ground (yellow, white) and ink (red), a blue band at its right end.
    band_code: str | None = None
    band_score: float = 0.0
    ground: str | None = None
    ink: str | None = None
    right_band: str | None = None
    # Where hyphens are printed (index of the character each precedes); None: not counted.
    hyphens: tuple[int, ...] | None = None
    hyphens_seen: int = 0
    # The plate's region in the frame, (x, y, width, height) in pixels; None: not kept. The
    # console and the notice show it enlarged beside the frame.
    bbox: tuple[int, int, int, int] | None = None
    # True: the frame was not read, its passage being settled by the frames before it (two
    # agreeing sure reads); it is in the passage and its evidence all the same.
    skipped: bool = False


class PassageEvent(_Event):
    """The frames of one vehicle passing one camera, with the voted plate."""

    schema_: Literal["lez.passage/1"] = Field(default=PASSAGE_SCHEMA, alias="schema")
    passage_id: str
    camera_id: str
    captured_at: AwareDatetime
    frames: tuple[FrameRef, ...]
    reads: tuple[FrameRead, ...] = ()
    plate: str | None
    country: str | None
    confidence: float
    char_confidences: tuple[float, ...] = ()
    # Set when the reads were replaced by ground truth (replay --ground-truth-plates).
    ground_truth: bool = False
    format_valid: bool = False
    agreeing_frames: int = 0
    # How ``country`` was established (see CountrySource) and the other countries whose plate
    # formats the text also fits and that the plate does not rule out (the adapter looks the
    # plate up under each before any notice).
    country_source: CountrySource = "none"
    country_candidates: tuple[str, ...] = ()
    # The countries whose formats the text fits that the plate's own evidence rules out (a
    # band code read on two frames, colours their plates cannot have): never looked up.
    ruled_out: tuple[str, ...] = ()
    # Of ``country_candidates``, those whose plates do not look like what the frames show (no
    # hyphen where they print one, black characters for a red-ink country): too weak to rule
    # them out, enough not to propose them first.
    unlikely_countries: tuple[str, ...] = ()
    # JPEG frames. On lez.plates empty by default: ``frames`` reference them on lez.frames
    # (partition, offset) and the fidus adapter fetches them for a decision that needs evidence
    # (EVIDENCE_DECISIONS); the frames themselves with LEZ_EVIDENCE_INLINE=true (and on a
    # record of an older plate reader). On lez.decisions only for EVIDENCE_DECISIONS.
    evidence: tuple[Base64Bytes, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def country_established(self) -> bool:
        """The country comes from the plate itself (EU band or colours), not its layout."""
        return self.country_source in ESTABLISHED_COUNTRY_SOURCES


class VehicleRecord(_Event):
    plate: str
    country: str
    vin: str = ""
    make: str = ""
    model: str = ""
    category: str = "M1"
    fuel: Fuel
    euro_norm: int | None = None
    first_registration: date | None = None
    holder_name: str = ""
    holder_address: str = ""
    flags: tuple[str, ...] = ()
    # The holder's language for notices (``fr``, ``nl``, ``de``, ``en``); "" when the registry
    # does not say (the notice is then bilingual French/Dutch).
    language: Literal["", "fr", "nl", "de", "en"] = ""


class Exemption(_Event):
    plate: str
    country: str
    kind: str
    valid_from: date
    valid_to: date


CandidateSource = Literal["lookalike", "other_country"]


class CandidateVehicle(_Event):
    """A registered vehicle the read could also be, found before an automatic notice: the
    same text under another country its format fits, or a look-alike plate (a confusable
    character changed, a leading digit added or dropped). The passage goes to review with
    each shown side by side; an operator may choose one."""

    plate: str
    country: str
    source: CandidateSource
    # For a look-alike, the characters confused (``1/7``; ``leading digit``).
    detail: str = ""
    make: str = ""
    model: str = ""
    fuel: Fuel | None = None
    euro_norm: int | None = None
    # What this vehicle would be judged; ``ambiguous``: the registry holds several vehicles
    # under this plate and country (make, fuel and norm are then unknown).
    outcome: Decision | Literal["ambiguous"]


class DecisionEvent(_Event):
    schema_: Literal["lez.decision/1"] = Field(default=DECISION_SCHEMA, alias="schema")
    passage: PassageEvent
    decision: Decision
    rule: str | None = None
    explanation: str = ""
    vehicle: VehicleRecord | None = None
    euro_norm: int | None = None
    euro_norm_derived: bool = False
    phase: str | None = None
    review_reasons: tuple[str, ...] = ()
    # The candidate vehicles the review reasons name (empty on older events).
    candidates: tuple[CandidateVehicle, ...] = ()
    notice_kind: NoticeKind | None = None
    amount_eur: int = 0
    # A suspected offence becomes a notice only after this moment (day-pass purchase window).
    settle_after: AwareDatetime | None = None
    # Where the camera stands (its configured location), named on the notice.
    camera_location: str = ""
    decided_at: AwareDatetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class HotlistHit(_Event):
    """A police hotlist hit (own topic, own purpose; never mixed with LEZ notices)."""

    schema_: Literal["lez.hotlist/1"] = Field(default=HOTLIST_SCHEMA, alias="schema")
    passage_id: str
    camera_id: str
    captured_at: AwareDatetime
    plate: str
    country: str
    confidence: float
    reasons: tuple[str, ...]
    checked_at: AwareDatetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeadLetter(_Event):
    schema_: Literal["lez.deadletter/1"] = Field(default=DEADLETTER_SCHEMA, alias="schema")
    stage: str
    error: str
    reason: str
    source_topic: str
    partition: int
    offset: int
    key: str | None = None
    camera_id: str | None = None
    seq: int | None = None
    # How many camera frames the failed record stands for (a passage holds several).
    frames: int = 1
    # Broker timestamp of the failed record (ms), for latency and accounting.
    broker_ts_ms: int | None = None
    payload_excerpt: str = ""
    failed_at: AwareDatetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def parse_event(cls: type[E], raw: bytes, *, topic: str = "", offset: int = -1) -> E:
    """Decode one record or raise :class:`EventError` with the reason."""
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise EventError(
            f"malformed {cls.__name__}: {loc}: {first.get('msg')}", topic=topic, offset=offset
        ) from exc
