"""Combine the reads of one passage's frames into one plate, with a calibrated confidence."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from lez.core.events import ESTABLISHED_COUNTRY_SOURCES, CountrySource
from plate_reader.base import PassageVote, PlateRead
from plate_reader.country import AMBIGUOUS_COUNTRY_CAP, CountryVerdict, settle_country
from plate_reader.grammar import auto_issuable, countries_for, formats, formats_for, printed

AUTO_ISSUE_THRESHOLD = 0.9
UNKNOWN_COUNTRY_CAP = 0.85
"""A plate whose country has no known pattern never reaches the auto-issue threshold."""
INVALID_FORMAT_CAP = 0.6
PLAUSIBLE_FORMAT_CAP = 0.85
"""A format that only makes a plate plausible (an older BE series, DE) stays below the
threshold however many frames read it."""
MIN_AGREEING_FRAMES = 2
"""Frames that must read the same text for a passage to reach the threshold."""
SINGLE_FRAME_CAP = 0.85
"""Highest confidence of a passage with fewer agreeing frames than that."""
SINGLE_FRAME_FACTOR = 0.97
"""One frame alone is trusted a little less than its own confidence."""

def _char_conf(read: PlateRead, i: int) -> float:
    if i < len(read.char_confidences):
        return read.char_confidences[i]
    return float(read.confidence ** (1.0 / max(len(read.normalized), 1)))


def _no_read(frames: int) -> PassageVote:
    return PassageVote(None, None, None, 0.0, (), False, 0, frames)


def _family(r: PlateRead) -> tuple[tuple[str, ...], int]:
    """Reads that can be voted together: the same length, and the same country or the same
    set of countries whose formats fit (FR and SK frames of one plate vote together)."""
    return tuple(sorted({r.country or "", *r.country_candidates})), len(r.normalized)


def _vote_chars(group: Sequence[PlateRead], length: int) -> tuple[str, tuple[float, ...]]:
    """Per position, the confidence-weighted majority character and its confidence."""
    chars: list[str] = []
    char_confs: list[float] = []
    for i in range(length):
        scores: dict[str, float] = defaultdict(float)
        for r in group:
            c = min(max(_char_conf(r, i), 1e-4), 1 - 1e-4)
            scores[r.normalized[i]] += math.log(c / (1 - c)) + 1.0
        ch = max(scores, key=lambda k: scores[k])
        chars.append(ch)
        miss = 1.0
        for r in group:
            if r.normalized[i] == ch:
                miss *= 1.0 - _char_conf(r, i)
        against = sum(1 for r in group if r.normalized[i] != ch)
        char_confs.append((1.0 - miss) * (0.5**against))
    return "".join(chars), tuple(char_confs)


def _country(
    best: Sequence[PlateRead], agreeing: Sequence[PlateRead], group: Sequence[PlateRead],
    normalized: str,
) -> CountryVerdict:
    """The passage's country, settled over what every frame showed of the plate (band code,
    colours: :func:`country.settle_country`): a band code must be read on two frames, and a
    single frame that contradicts is enough to doubt. The grammar's choice is the country of
    the surest agreeing (or voted) frame."""
    pool = agreeing or group
    surest = max(pool, key=lambda r: r.confidence)
    fits = countries_for(normalized)
    if surest.country is not None and surest.country not in fits:
        fits = (surest.country, *fits)
    return settle_country(
        fits, surest.country, [r.evidence for r in best], normalized=normalized
    )


def vote(frame_reads: Sequence[Sequence[PlateRead]]) -> PassageVote:
    """The passage's plate: per-character, confidence-weighted majority over the frames.

    Each frame contributes its best read. Reads are grouped by length and country (or set of
    fitting countries); the group with the most confidence wins and its characters are voted
    per position. The confidence grows with agreeing frames (the same text) and shrinks with
    frames that read something else. Voting never lifts a cap: the passage's format is valid
    only if every agreeing frame's is; a plausible-only format, a country the plate did not
    establish among several that fit, and a single agreeing frame all stay below
    ``AUTO_ISSUE_THRESHOLD``.
    """
    frames = len(frame_reads)
    best = [reads[0] for reads in frame_reads if reads]
    if not best:
        return _no_read(frames)
    groups: dict[tuple[tuple[str, ...], int], list[PlateRead]] = defaultdict(list)
    for r in best:
        groups[_family(r)].append(r)

    def weight(rs: list[PlateRead]) -> float:
        return sum(r.confidence + (0.5 if r.format_valid else 0.0) for r in rs)

    group = groups[max(groups, key=lambda k: weight(groups[k]))]
    normalized, char_confs = _vote_chars(group, len(group[0].normalized))
    agreeing = [r for r in best if r.normalized == normalized]
    verdict = _country(best, agreeing, group, normalized)
    country, source, candidates = verdict.country, verdict.source, verdict.candidates
    # the best single frame's confidence, raised by each further agreeing frame (damped:
    # frames of one passage share light and angle, so their errors are not independent)
    confs = sorted((r.confidence for r in agreeing), reverse=True)
    if confs:
        p = confs[0] * (SINGLE_FRAME_FACTOR if len(confs) == 1 else 1.0)
        for extra in confs[1:]:
            p = p + (1.0 - p) * 0.5 * extra
    else:
        p = math.prod(char_confs) * 0.8
    p *= 0.6 ** (len(best) - len(agreeing))
    # a cap a frame's read carries (another crop read it otherwise, light text) holds
    p = min([p, *(r.cap for r in agreeing)])
    # frames with no read at all do not count against, they were just blurred or dark
    format_valid = (
        bool(agreeing)
        and all(r.format_valid for r in agreeing)
        and bool(country and formats_for(normalized, country))
    )
    p = _caps(p, normalized, country, source, candidates, format_valid, len(agreeing))
    return PassageVote(
        plate=printed(normalized, country) if format_valid else normalized,
        normalized=normalized,
        country=country,
        confidence=float(min(max(p, 0.0), 1.0)),
        char_confidences=char_confs,
        format_valid=format_valid,
        agreeing_frames=len(agreeing),
        frames=frames,
        country_source=source,
        country_candidates=candidates,
        ruled_out=verdict.ruled_out,
        unlikely=verdict.unlikely,
    )


def _caps(
    p: float,
    normalized: str,
    country: str | None,
    source: CountrySource,
    candidates: tuple[str, ...],
    format_valid: bool,
    agreeing: int,
) -> float:
    """The passage's confidence under the caps no number of frames lifts."""
    if country is None or not any(f.country == country for f in formats()):
        p = min(p, UNKNOWN_COUNTRY_CAP)
    if not format_valid:
        return min(p, INVALID_FORMAT_CAP)
    if not auto_issuable(normalized, country):
        p = min(p, PLAUSIBLE_FORMAT_CAP)
    if candidates and source not in ESTABLISHED_COUNTRY_SOURCES:
        p = min(p, AMBIGUOUS_COUNTRY_CAP)
    if agreeing < MIN_AGREEING_FRAMES:
        p = min(p, SINGLE_FRAME_CAP)
    return p
