"""Combine the reads of one passage's frames into one plate, with a calibrated confidence."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from plate_reader.base import PassageVote, PlateRead
from plate_reader.grammar import FORMATS, formats_for, printed

AUTO_ISSUE_THRESHOLD = 0.9
UNKNOWN_COUNTRY_CAP = 0.85
"""A plate whose country has no known pattern never reaches the auto-issue threshold."""
INVALID_FORMAT_CAP = 0.6
SINGLE_FRAME_FACTOR = 0.97
"""One frame alone is trusted a little less than its own confidence."""

_KNOWN_COUNTRIES = {f.country for f in FORMATS}


def _char_conf(read: PlateRead, i: int) -> float:
    if i < len(read.char_confidences):
        return read.char_confidences[i]
    return float(read.confidence ** (1.0 / max(len(read.normalized), 1)))


def _no_read(frames: int) -> PassageVote:
    return PassageVote(None, None, None, 0.0, (), False, 0, frames)


def vote(frame_reads: Sequence[Sequence[PlateRead]]) -> PassageVote:
    """The passage's plate: per-character, confidence-weighted majority over the frames.

    Each frame contributes its best read. Reads are grouped by (country, length); the group
    with the most confidence wins and its characters are voted per position. The confidence
    grows with agreeing frames and shrinks with frames that read something else.
    """
    frames = len(frame_reads)
    best = [reads[0] for reads in frame_reads if reads]
    if not best:
        return _no_read(frames)
    groups: dict[tuple[str | None, int], list[PlateRead]] = defaultdict(list)
    for r in best:
        groups[(r.country, len(r.normalized))].append(r)

    def weight(rs: list[PlateRead]) -> float:
        return sum(r.confidence + (0.5 if r.format_valid else 0.0) for r in rs)

    key = max(groups, key=lambda k: weight(groups[k]))
    group = groups[key]
    country, length = key
    chars: list[str] = []
    char_confs: list[float] = []
    for i in range(length):
        scores: dict[str, float] = defaultdict(float)
        for r in group:
            c = min(max(_char_conf(r, i), 1e-4), 1 - 1e-4)
            scores[r.normalized[i]] += math.log(c / (1 - c)) + 1.0
        ch = max(scores, key=lambda k: scores[k])
        chars.append(ch)
        votes_for = [r for r in group if r.normalized[i] == ch]
        miss = 1.0
        for r in votes_for:
            miss *= 1.0 - _char_conf(r, i)
        against = sum(1 for r in group if r.normalized[i] != ch)
        conf = (1.0 - miss) * (0.5**against)
        char_confs.append(conf)
    normalized = "".join(chars)
    agreeing = [r for r in best if r.normalized == normalized]
    # the best single frame's confidence, raised by each further agreeing frame (damped:
    # frames of one passage share light and angle, so their errors are not independent)
    confs = sorted((r.confidence for r in agreeing), reverse=True)
    if confs:
        p = confs[0] * (SINGLE_FRAME_FACTOR if len(confs) == 1 else 1.0)
        for extra in confs[1:]:
            p = p + (1.0 - p) * 0.5 * extra
    else:
        p = math.prod(char_confs) * 0.8
    disagreeing = len(best) - len(agreeing)
    p *= 0.6**disagreeing
    # frames with no read at all do not count against, they were just blurred or dark
    format_valid = bool(formats_for(normalized, country)) if country else False
    if country is None or country not in _KNOWN_COUNTRIES:
        p = min(p, UNKNOWN_COUNTRY_CAP)
    if not format_valid:
        p = min(p, INVALID_FORMAT_CAP)
    if not all(r.format_valid for r in agreeing):
        p = min(p, INVALID_FORMAT_CAP)
    return PassageVote(
        plate=printed(normalized, country) if format_valid else normalized,
        normalized=normalized,
        country=country,
        confidence=float(min(max(p, 0.0), 1.0)),
        char_confidences=tuple(char_confs),
        format_valid=format_valid,
        agreeing_frames=len(agreeing),
        frames=frames,
    )
