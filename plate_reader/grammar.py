"""Plate grammar: per-country formats, normalisation and format-guided character choice.

A format is written as a template such as ``D-LLL-DDD``: ``L`` a letter, ``D`` a digit, ``A``
either; any other character is a separator kept when printing. Letter and digit positions are
fixed by the format, so O/0, I/1, B/8, S/5, Z/2, G/6, D/0 are resolved per position. Digit-digit
confusions (1/7, 3/8, 0/8, 5/6) cannot be resolved that way and lower the confidence instead.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from lez.core.plate_systems import PlateSystemFormat, load_plate_systems
from lez.core.plates import normalize_plate

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}

LOOKALIKES: dict[tuple[str, str], float] = {
    ("O", "0"): 0.8, ("D", "0"): 0.3, ("Q", "0"): 0.3, ("U", "0"): 0.1, ("I", "1"): 0.6,
    ("L", "1"): 0.1, ("J", "1"): 0.1, ("T", "7"): 0.1, ("B", "8"): 0.3, ("S", "5"): 0.3,
    ("Z", "2"): 0.3, ("G", "6"): 0.3, ("A", "4"): 0.2,
}  # fmt: skip
"""(letter, digit) look-alikes, with the share of one's probability credited to the other
when the format rules the first out."""
LETTER_FOR_DIGIT = {"0": "O", "1": "I", "8": "B", "5": "S", "2": "Z", "6": "G", "4": "A", "7": "T"}
DIGIT_FOR_LETTER = {letter: digit for letter, digit in LOOKALIKES}
DIGIT_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "1": ("7",), "7": ("1",), "3": ("8",), "8": ("3", "0"), "0": ("8",), "5": ("6",),
    "6": ("5",),
}  # fmt: skip

Dist = Sequence[float]
"""A probability for every character of ``ALPHABET``."""


@dataclass(frozen=True)
class PlateFormat(PlateSystemFormat):
    """A format of the plate-systems table as the grammar uses it."""

    @property
    def auto_issuable(self) -> bool:
        """False for formats that only make a plate plausible (never auto-fined on that
        alone): the table's ``valid``."""
        return self.valid

    @property
    def separator_positions(self) -> frozenset[int]:
        """Indexes of the characters that a separator precedes (``D-LLL-DDD``: 1 and 4)."""
        out: set[int] = set()
        count = 0
        for c in self.template:
            if c in "LDA":
                count += 1
            elif count:
                out.add(count)
        return frozenset(out)

    def render(self, normalized: str) -> str:
        return _render_pattern(self.template).format(*normalized)


@functools.cache
def _render_pattern(template: str) -> str:
    """``D-LLL-DDD`` -> ``{}-{}{}{}-{}{}{}`` (braces in separators escaped)."""
    escaped = (c.replace("{", "{{").replace("}", "}}") for c in template)
    return "".join("{}" if c in "LDA" else e for c, e in zip(template, escaped, strict=True))


@functools.cache
def formats() -> tuple[PlateFormat, ...]:
    """Every known plate format of Europe, from the plate-systems table
    (``lez/core/data/plate-systems.yaml``): valid formats are ``auto_issuable``, plausible
    ones are not. ``prior``: a rough share of the passages in Brussels with that format; it
    decides between formats that fit a read about equally well."""
    return tuple(
        PlateFormat(f.country, f.template, f.letters, f.first_digits, f.valid, f.prior)
        for f in load_plate_systems().formats
    )


def __getattr__(name: str) -> tuple[PlateFormat, ...]:
    """``FORMATS``: :func:`formats`, loaded on first use (no work at import time)."""
    if name == "FORMATS":
        return formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


normalize = normalize_plate
"""Upper case, letters and digits only: ``1-abc-123`` -> ``1ABC123`` (shared with the rest)."""


def formats_for(normalized: str, country: str | None = None) -> list[PlateFormat]:
    return [
        f
        for f in formats()
        if f.matches(normalized) and (country is None or f.country == country)
    ]


def countries_for(normalized: str) -> tuple[str, ...]:
    """The countries with a format the text fits, the likeliest (highest prior) first."""
    best: dict[str, float] = {}
    for f in formats_for(normalize(normalized)):
        best[f.country] = max(best.get(f.country, 0.0), f.prior)
    return tuple(sorted(best, key=lambda c: best[c], reverse=True))


def auto_issuable(normalized: str, country: str | None) -> bool:
    """The text is in a format of ``country`` that is valid on its own (not plausible only)."""
    return any(f.auto_issuable for f in formats_for(normalize(normalized), country))


def printed(normalized: str, country: str | None) -> str:
    """The plate as its country prints it (``1ABC123``/BE -> ``1-ABC-123``); unchanged when
    no known format of ``country`` fits."""
    norm = normalize(normalized)
    fmts = formats_for(norm, country)
    if not fmts and country is None:
        return norm
    return fmts[0].render(norm) if fmts else norm


CUT_SHORT_CHARS = 2
"""Characters a crop may cut off a plate's end (a thin leading ``1``, a character against the
EU band or the plate's border)."""
CUT_SHORT_MIN_PRIOR = 0.005
"""Least prior of a format for a read to be re-read as possibly cut short of it: the formats
seen daily in Brussels; a rare one (a Turkish ``34 ABC 123`` around a Belgian ``1ABC123``)
would have every current Belgian read re-read for nothing."""


@functools.cache
def could_be_cut_short(normalized: str) -> bool:
    """The text is also the head or the tail of a plate in a common format
    (``CUT_SHORT_MIN_PRIOR``) one or two characters longer: a crop that cut the plate's first
    or last characters off would read it (``ABC123`` of ``1ABC123``). A text that is no such
    part (a current Belgian plate) cannot have lost a character at its ends and still fit a
    common format. Rarer formats are looked up as look-alikes, never re-read."""
    norm = normalize(normalized)
    n = len(norm)
    for f in formats():
        if f.prior < CUT_SHORT_MIN_PRIOR:
            continue
        extra = f.length - n
        if not 1 <= extra <= CUT_SHORT_CHARS:
            continue
        for offset in (0, extra):
            if all(ch in f.allowed(i + offset) for i, ch in enumerate(norm)):
                return True
    return False


def detect_country(normalized: str) -> str | None:
    fmts = formats_for(normalize(normalized))
    return fmts[0].country if fmts else None


@dataclass(frozen=True)
class Candidate:
    normalized: str
    printed: str
    country: str | None
    format_valid: bool
    char_confidences: tuple[float, ...]
    score: float
    """Mean log confidence, with penalties for dropped characters; higher is better."""
    auto_issuable: bool = False

    @property
    def confidence(self) -> float:
        p = 1.0
        for c in self.char_confidences:
            p *= c
        return p


def position_confidence(dist: Dist, char: str, allowed: str) -> float:
    """Confidence that the plate shows ``char`` where the format allows ``allowed``.

    The probability of characters the format rules out but that look like ``char`` (O for 0)
    is credited to it; the probability of a confusable digit (7 for 1) is taken off.
    """
    index, terms = _confidence_terms(char, allowed)
    p = dist[index]
    for other, weight in terms:
        p += weight * dist[other]
    return min(max(p, 1e-4), 1.0)


@functools.cache
def _confidence_terms(char: str, allowed: str) -> tuple[int, tuple[tuple[int, float], ...]]:
    """The index of ``char`` and the (index, weight) of every other character that adds to
    (look-alikes the format rules out) or takes from (confusable digits) its confidence."""
    terms: list[tuple[int, float]] = []
    for (letter, digit), weight in LOOKALIKES.items():
        if char == digit and letter not in allowed:
            terms.append((_INDEX[letter], weight))
        elif char == letter and digit not in allowed:
            terms.append((_INDEX[digit], weight))
    if char in DIGITS:
        terms.extend((_INDEX[other], -0.5) for other in DIGIT_CONFUSIONS.get(char, ()))
    return _INDEX[char], tuple(terms)


@functools.cache
def _allowed_terms(
    allowed: str,
) -> tuple[npt.NDArray[np.intp], tuple[tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]], ...]]:
    """:func:`_confidence_terms` of every character of ``allowed`` as arrays: the characters'
    indexes, and per term slot the other characters' indexes and weights (weight 0 where a
    character has fewer terms)."""
    terms = [_confidence_terms(c, allowed) for c in allowed]
    slots = max((len(t) for _, t in terms), default=0)
    index = np.array([i for i, _ in terms], dtype=np.intp)
    columns = []
    for k in range(slots):
        others = np.array([t[k][0] if k < len(t) else 0 for _, t in terms], dtype=np.intp)
        weights = np.array([t[k][1] if k < len(t) else 0.0 for _, t in terms], dtype=np.float64)
        columns.append((others, weights))
    return index, tuple(columns)


class _Position:
    """Best character and its confidence for each allowed set, memoised per decoded position."""

    def __init__(self, dist: Dist) -> None:
        self.dist = dist
        self.top = float(max(dist))
        self._array = np.asarray(dist, dtype=np.float64)
        self._cache: dict[str, tuple[str, float, float]] = {}

    def best(self, allowed: str) -> tuple[str, float, float]:
        """(character, its confidence, log of it): :func:`position_confidence` of every
        character of ``allowed`` at once, each summed in the same order, so to the same float;
        of equal confidences the greatest character, as ``max`` of (confidence, character)."""
        hit = self._cache.get(allowed)
        if hit is None:
            index, columns = _allowed_terms(allowed)
            d = self._array
            p = d[index]
            for others, weights in columns:
                p = p + weights * d[others]
            p = np.minimum(np.maximum(p, 1e-4), 1.0)
            top = p.max()
            char = max(allowed[i] for i in np.flatnonzero(p == top))
            conf = float(top)
            hit = (char, conf, math.log(max(conf, 1e-6)))
            self._cache[allowed] = hit
        return hit


DROP_FLOOR = 0.1
"""Ignoring a decoded character costs log(1 - its confidence), at most log(DROP_FLOOR)."""
MAX_INNER_DROPS = 1
"""At most one ignored character between kept ones (an emblem, a sticker)."""
INNER_DROP_PENALTY = 0.5
"""Extra cost of ignoring a character between kept ones (an emblem, a sticker)."""
UNKNOWN_PRIOR = 0.01
"""Prior of a plate in no known format (a foreign or personalised plate, or not a plate)."""
HINT_BONUS = 2.0
"""Log-odds added to the formats of the country hint."""


SEP_IF_EXPECTED = 0.5
"""Likelihood floor of a separator the format prints but the recogniser did not see."""
SEP_IF_UNEXPECTED = 0.8
"""How much a separator the format does not print costs when the recogniser saw one."""


def _separator_score(
    keep: Sequence[int], separators: Sequence[float], expected: frozenset[int]
) -> float:
    total = 0.0
    for j in range(1, len(keep)):
        seen = max(separators[keep[j - 1] + 1 : keep[j] + 1], default=0.0)
        if keep[j] - keep[j - 1] > 1:
            seen = 1.0  # an ignored character between kept ones (an emblem) separates them
        if j in expected:
            total += math.log(SEP_IF_EXPECTED + (1 - SEP_IF_EXPECTED) * seen)
        else:
            total += math.log(max(1.0 - SEP_IF_UNEXPECTED * seen, 1e-3))
    return total


@dataclass(frozen=True)
class _Shape:
    """What :func:`fit` needs of a format, worked out once per format."""

    fmt: PlateFormat
    allowed: tuple[str, ...]
    expected: frozenset[int]
    log_prior: float


@functools.cache
def _shapes(formats: tuple[PlateFormat, ...]) -> tuple[_Shape, ...]:
    return tuple(
        _Shape(f, tuple(map(f.allowed, range(f.length))), f.separator_positions, math.log(f.prior))
        for f in formats
    )


@functools.cache
def _keep_sets(n: int, m: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """The ways to keep ``m`` of ``n`` decoded positions with at most ``MAX_INNER_DROPS``
    ignored between kept ones: (kept, ignored)."""
    out: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for keep in itertools.combinations(range(n), m):
        inner = sum(1 for i in range(keep[0], keep[-1]) if i not in keep)
        if inner > MAX_INNER_DROPS:
            continue
        kept = set(keep)
        out.append((keep, tuple(i for i in range(n) if i not in kept)))
    return tuple(out)


def _drop_cost(keep: tuple[int, ...], dropped: tuple[int, ...], tops: Sequence[float]) -> float:
    cost = 0.0
    for i in dropped:
        cost -= math.log(max(1.0 - tops[i], DROP_FLOOR))
        if keep[0] < i < keep[-1]:
            cost += INNER_DROP_PENALTY
    return cost


_Best = dict[tuple[str, str | None], tuple[float, tuple[float, ...], PlateFormat]]
"""Per (text, country): the best score, its character confidences and the format it fits."""


class _Fitting:
    """One :func:`fit`: the decoded positions, the best score per (text, country), and what
    formats share while they are fitted: the ways to keep a length of the decoded positions
    with their cost, the character picks of formats that allow the same characters per
    position, the separator scores of formats with the same separator positions."""

    def __init__(self, dists: Sequence[Dist], separators: Sequence[float] | None) -> None:
        self.n = len(dists)
        self.positions = [_Position(d) for d in dists]
        self.tops = [p.top for p in self.positions]
        self.separators = separators
        self.best: _Best = {}
        self.by_length: dict[int, list[tuple[tuple[int, ...], float]]] = {}
        self.picked: dict[
            tuple[tuple[str, ...], tuple[int, ...]], tuple[str, tuple[float, ...], float]
        ] = {}
        self.sep_scores: dict[tuple[tuple[int, ...], frozenset[int]], float] = {}
        self.by_cost: dict[int, list[tuple[tuple[int, ...], float]]] = {}

    def keep_sets(self, m: int) -> list[tuple[tuple[int, ...], float]]:
        """The ways to keep ``m`` of the decoded positions, with the cost of the ignored."""
        sets = self.by_length.get(m)
        if sets is None:
            sets = [(k, _drop_cost(k, d, self.tops)) for k, d in _keep_sets(self.n, m)]
            self.by_length[m] = sets
        return sets

    def sets_by_cost(self, m: int) -> list[tuple[tuple[int, ...], float]]:
        """:meth:`keep_sets` cheapest first (of equal costs, in their order)."""
        sets = self.by_cost.get(m)
        if sets is None:
            sets = self.by_cost[m] = sorted(self.keep_sets(m), key=lambda kc: kc[1])
        return sets

    def score(
        self, shape: _Shape, bonus: float, keep: tuple[int, ...], cost: float
    ) -> tuple[float, str, tuple[float, ...]]:
        """(score, text, character confidences) of the format of ``shape`` (its log prior
        plus ``bonus``) on the decoded positions ``keep`` (dropping the others costs
        ``cost``). The score is at most ``(bonus - cost) / n``: every other term is a log of a
        probability (:func:`_best_by_bound` relies on it)."""
        allowed, expected = shape.allowed, shape.expected
        hit = self.picked.get((allowed, keep))
        if hit is None:
            picks = [self.positions[k].best(allowed[j]) for j, k in enumerate(keep)]
            hit = (
                "".join(p[0] for p in picks),
                tuple(p[1] for p in picks),
                sum(p[2] for p in picks),
            )
            self.picked[(allowed, keep)] = hit
        text, confs, logs = hit
        sep = 0.0
        if self.separators:
            got = self.sep_scores.get((keep, expected))
            if got is None:
                got = self.sep_scores[(keep, expected)] = _separator_score(
                    keep, self.separators, expected
                )
            sep = got
        return (logs - cost + bonus + sep) / self.n, text, confs

    def add(self, shape: _Shape, bonus: float) -> None:
        """Score the format of ``shape`` (its log prior plus ``bonus``) on every way to keep
        its length of the decoded positions; keep the best score per (text, country)."""
        best = self.best
        for keep, cost in self.keep_sets(len(shape.allowed)):
            score, text, confs = self.score(shape, bonus, keep, cost)
            key = (text, shape.fmt.country)
            if key not in best or best[key][0] < score:
                best[key] = (score, confs, shape.fmt)

    def candidates(self) -> dict[tuple[str, str | None], Candidate]:
        return {
            key: Candidate(
                key[0], fmt.render(key[0]), fmt.country, True, confs, score, fmt.auto_issuable
            )  # fmt: skip
            for key, (score, confs, fmt) in self.best.items()
        }


def _raw(dists: Sequence[Dist]) -> Candidate | None:
    """The raw decoding (each position's likeliest character), in no known format."""
    n = len(dists)
    raw = "".join(ALPHABET[max(range(len(d)), key=lambda i: d[i])] for d in dists)
    if not raw:
        return None
    raw_confs = tuple(float(max(d)) for d in dists)
    score = (sum(math.log(max(c, 1e-6)) for c in raw_confs) + math.log(UNKNOWN_PRIOR)) / n
    return Candidate(raw, raw, None, False, raw_confs, score)


def _add_raw(found: dict[tuple[str, str | None], Candidate], dists: Sequence[Dist]) -> None:
    """The raw decoding, unless a format gave the same text."""
    raw = _raw(dists)
    if raw is not None and not any(c.normalized == raw.normalized for c in found.values()):
        found[(raw.normalized, None)] = raw


def _fitting_shapes(
    n: int, country_hint: str | None, max_drop: int
) -> Iterator[tuple[_Shape, float]]:
    """The formats a read of ``n`` positions is fitted to, in the table's order, each with its
    bonus (log prior, and the hint's)."""
    for shape in _shapes(formats()):
        m = len(shape.allowed)
        if m > n or n - m > max_drop:
            continue
        bonus = shape.log_prior
        if country_hint is not None and shape.fmt.country == country_hint:
            bonus += HINT_BONUS
        yield shape, bonus


def _fitted(
    dists: Sequence[Dist],
    country_hint: str | None,
    max_drop: int,
    separators: Sequence[float] | None,
) -> _Fitting:
    fitting = _Fitting(dists, separators)
    for shape, bonus in _fitting_shapes(fitting.n, country_hint, max_drop):
        fitting.add(shape, bonus)
    return fitting


def _best_by_bound(
    dists: Sequence[Dist],
    country_hint: str | None,
    max_drop: int,
    separators: Sequence[float] | None,
) -> Candidate | None:
    """:func:`best_fit`'s answer found without scoring every format on every way to keep its
    length, or ``None`` where that cannot be told so (then ask :func:`best_fit`).

    A format kept on some positions scores at most ``(bonus - cost) / n``
    (:meth:`_Fitting.score`), so formats and keep sets are tried from the highest such bound
    down, and the search stops where the bound falls below the best score found: nothing
    left could reach it. The raw read wins where it scores higher and its text is no
    format's (kept whole). The search cannot tell the order of equal scores (``fit()`` keeps
    the first in the table's order, which it does not walk), so it gives up when the best
    score is reached twice."""
    if separators is not None and not all(0.0 <= s <= 1.0 for s in separators):
        return None  # a separator term could be positive: the bound would not hold
    fitting = _Fitting(dists, separators)
    n = fitting.n
    if n == 0:
        return None
    shapes = []
    for shape, bonus in _fitting_shapes(n, country_hint, max_drop):
        sets = fitting.sets_by_cost(len(shape.allowed))
        if sets:
            shapes.append(((bonus - sets[0][1]) / n, shape, bonus, sets))
    shapes.sort(key=lambda t: t[0], reverse=True)
    top = -math.inf
    found: tuple[str, tuple[float, ...], PlateFormat] | None = None
    reached = 0
    for bound, shape, bonus, sets in shapes:
        if bound < top:
            break
        for keep, cost in sets:
            if (bonus - cost) / n < top:
                break
            score, text, confs = fitting.score(shape, bonus, keep, cost)
            if score > top:
                top, found, reached = score, (text, confs, shape.fmt), 1
            elif score == top:
                reached += 1
    if found is None:
        return None
    raw = _raw(dists)
    if raw is not None and raw.score > top:
        # the raw read wins unless its text is a format's (kept whole: all n positions)
        whole = tuple(range(n))
        if not any(
            fitting.score(shape, bonus, whole, 0.0)[1] == raw.normalized
            for _, shape, bonus, _ in shapes
            if len(shape.allowed) == n
        ):
            return raw
    if reached > 1:
        return None
    text, confs, fmt = found
    return Candidate(text, fmt.render(text), fmt.country, True, confs, top, fmt.auto_issuable)


def fit(
    dists: Sequence[Dist],
    country_hint: str | None = None,
    max_drop: int = 3,
    separators: Sequence[float] | None = None,
) -> list[Candidate]:
    """Candidates for per-position character distributions, best first.

    The decoded characters are fitted to every known format; up to ``max_drop`` of them may be
    ignored (a country band letter or the plate border at the ends costs less than an emblem in
    the middle). ``separators`` (per position: how surely a hyphen or space precedes it) favour
    formats that print their separators there. The raw decoding is always returned too, marked
    ``format_valid=False``.

    Formats that allow the same characters per position share their character picks, and
    formats with the same separator positions share their separator scores.
    """
    found = _fitted(dists, country_hint, max_drop, separators).candidates()
    _add_raw(found, dists)
    return sorted(found.values(), key=lambda c: c.score, reverse=True)


def best_fit(
    dists: Sequence[Dist],
    country_hint: str | None = None,
    max_drop: int = 3,
    separators: Sequence[float] | None = None,
) -> Candidate | None:
    """``fit(...)[0]`` (``None`` for no positions), without making the other candidates: a
    read is fitted to every format of Europe, a few hundred (text, country) pairs, and the
    reader keeps the best. Most reads are settled by the few formats that could score best
    (:func:`_best_by_bound`); the rest are fitted to every format."""
    quick = _best_by_bound(dists, country_hint, max_drop, separators)
    if quick is not None:
        return quick
    fitting = _fitted(dists, country_hint, max_drop, separators)
    best: Candidate | None = None
    top: tuple[str, str | None] | None = None
    for key, (score, _, _) in fitting.best.items():
        if top is None or score > fitting.best[top][0]:  # the first of equal scores, as sorted()
            top = key
    if top is not None:
        score, confs, fmt = fitting.best[top]
        text = top[0]
        best = Candidate(text, fmt.render(text), fmt.country, True, confs, score, fmt.auto_issuable)
    raw = _raw(dists)
    if raw is None or any(text == raw.normalized for text, _ in fitting.best):
        return best
    return raw if best is None or raw.score > best.score else best


def text_dists(raw_text: str, char_confs: Sequence[float]) -> list[list[float]]:
    """Distributions from a text and its per-character confidences: the read character gets
    its confidence, the rest is shared by its look-alikes (or spread evenly)."""
    norm = normalize(raw_text)
    if len(char_confs) != len(norm):
        char_confs = [1.0] * len(norm) if not char_confs else [min(char_confs)] * len(norm)
    out: list[list[float]] = []
    for ch, conf in zip(norm, char_confs, strict=True):
        conf = min(max(float(conf), 0.0), 1.0)
        dist = [0.0] * len(ALPHABET)
        partners = [
            *(LETTER_FOR_DIGIT.get(ch, "") or ()),
            *(DIGIT_FOR_LETTER.get(ch, "") or ()),
            *DIGIT_CONFUSIONS.get(ch, ()),
        ]
        partners = [p for p in partners if p and p != ch]
        rest = 1.0 - conf
        if partners:
            for p in partners:
                dist[_INDEX[p]] += rest / len(partners)
        else:
            for i in range(len(dist)):
                dist[i] += rest / len(dist)
        dist[_INDEX[ch]] += conf
        out.append(dist)
    return out


def candidates(
    raw_text: str, char_confs: Sequence[float], country_hint: str | None = None
) -> list[tuple[str, str, str | None, bool, tuple[float, ...]]]:
    """``(normalized, printed, country, format_valid, adjusted char confidences)``, best first.

    Every candidate keeps all characters of ``raw_text`` (nothing dropped); letter/digit
    look-alikes are resolved by each format's positions; a look-alike substitution costs
    confidence, and so does a digit that is commonly confused with another digit.
    """
    dists = text_dists(raw_text, char_confs)
    result: list[tuple[str, str, str | None, bool, tuple[float, ...]]] = []
    for cand in fit(dists, country_hint, max_drop=0):
        confs = cand.char_confidences
        if not cand.format_valid:
            confs = tuple(
                _digit_penalty(ch, c) for ch, c in zip(cand.normalized, confs, strict=True)
            )
        else:
            confs = tuple(
                min(c, _digit_penalty(ch, c)) for ch, c in zip(cand.normalized, confs, strict=True)
            )
        result.append((cand.normalized, cand.printed, cand.country, cand.format_valid, confs))
    return result


def _digit_penalty(ch: str, conf: float) -> float:
    if ch in DIGIT_CONFUSIONS and conf < 1.0:
        return conf * (1.0 - 0.5 * (1.0 - conf))
    return conf


MISSING_CONF = 0.05
"""Likelihood of a character of a text that a recogniser decoded nothing for."""


def align(
    dists: Sequence[Dist], text: str, allowed: Sequence[str]
) -> tuple[float, tuple[float | None, ...]]:
    """How well one recogniser's decoding supports ``text``: the best monotone alignment of
    the decoded positions to its characters, where a decoded position may be ignored (costing
    as in :func:`fit`) and a character may have no decoded position (``MISSING_CONF``).

    Returns the log-likelihood and the confidence lent to each character of ``text``
    (look-alikes resolved by ``allowed``, the characters each position may hold); ``None``
    for a character with no decoded position (no evidence either way)."""
    positions = [_Position(d) for d in dists]
    dp, back = _alignments(positions, text, allowed)
    return dp[len(dists)][len(text)], _lent(positions, back, text, allowed)


def _alignments(
    positions: Sequence[_Position], text: str, allowed: Sequence[str]
) -> tuple[list[list[float]], list[list[tuple[int, int, float]]]]:
    """The alignment table of :func:`align`: ``dp[i][j]``, the best log-likelihood with ``i``
    decoded positions and ``j`` characters consumed, and ``back[i][j]``, the step that led
    there (the previous ``i``, ``j`` and the confidence of a match, -1 otherwise)."""
    n, m = len(positions), len(text)
    miss = math.log(MISSING_CONF)
    neg = -math.inf
    dp = [[neg] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int, float]]] = [[(0, 0, 0.0)] * (m + 1) for _ in range(n + 1)]
    dp[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            here = dp[i][j]
            if here == neg:
                continue
            if i < n:
                drop = here + math.log(max(1.0 - positions[i].top, DROP_FLOOR))
                if drop > dp[i + 1][j]:
                    dp[i + 1][j] = drop
                    back[i + 1][j] = (i, j, -1.0)
            if j < m:
                if miss + here > dp[i][j + 1]:
                    dp[i][j + 1] = here + miss
                    back[i][j + 1] = (i, j, -1.0)
            if i < n and j < m:
                conf = position_confidence(positions[i].dist, text[j], allowed[j])
                match = here + math.log(conf)
                if match > dp[i + 1][j + 1]:
                    dp[i + 1][j + 1] = match
                    back[i + 1][j + 1] = (i, j, conf)
    return dp, back


def _lent(
    positions: Sequence[_Position],
    back: Sequence[Sequence[tuple[int, int, float]]],
    text: str,
    allowed: Sequence[str],
) -> tuple[float | None, ...]:
    """The confidence the best alignment (``back``, from :func:`_alignments`) lends each
    character of ``text``; ``None`` for a character with no decoded position."""
    confs: list[float | None] = [None] * len(text)
    # a character missed next to an ignored position is a misread there, not a gap: it gets
    # that position's confidence in it (so a disagreement cannot hide as a gap)
    dropped: list[int] = []
    missed: list[int] = []

    def settle() -> None:
        for di, mj in zip(sorted(dropped), sorted(missed), strict=False):
            confs[mj] = position_confidence(positions[di].dist, text[mj], allowed[mj])
        dropped.clear()
        missed.clear()

    i, j = len(positions), len(text)
    while i or j:
        pi, pj, conf = back[i][j]
        if pj < j and pi < i:
            settle()
            confs[pj] = conf
        elif pi < i:
            dropped.append(pi)
        else:
            missed.append(pj)
        i, j = pi, pj
    settle()
    return tuple(confs)


def _allowed_for(cand: Candidate) -> tuple[list[str], float]:
    """Per character, what the candidate's format allows there; and the format's prior."""
    fmts = formats_for(cand.normalized, cand.country) if cand.format_valid else []
    if not fmts:
        return [ALPHABET] * len(cand.normalized), UNKNOWN_PRIOR
    fmt = max(fmts, key=lambda f: f.prior)
    return [fmt.allowed(i) for i in range(fmt.length)], fmt.prior


@dataclass(frozen=True)
class EngineRead:
    """One recogniser's decoding of a crop, and the weight of its vote."""

    dists: Sequence[Dist]
    separators: Sequence[float] | None
    weight: float
    floor: float = 0.0
    """The least confidence this recogniser lends a character it reads otherwise: how often
    it misreads a character that is right (a weak recogniser cannot veto a strong one)."""


MIN_PLATE_LENGTH = 4
ENSEMBLE_TOP = 4
"""Candidates of each recogniser put to the vote."""


def ensemble_fit(reads: Sequence[EngineRead], country_hint: str | None = None) -> list[Candidate]:
    """Candidates for one crop read by several recognisers, best first.

    Each recogniser's best candidates (per :func:`fit`) are pooled; every pooled text is then
    scored by every recogniser (its :func:`fit` log-likelihood when it proposed the text itself,
    else the :func:`align` one of the text in the text's format). The score is the weighted
    mean of those (per decoded position of the longest decoding), and each character's
    confidence the weighted geometric mean of the confidences the recognisers lend it: a
    recogniser that reads a character otherwise lowers its confidence; one that decoded nothing
    there does not vote on it.
    """
    total = sum(r.weight for r in reads)
    if not reads or total <= 0:
        return []
    fitted: list[dict[tuple[str, str | None], Candidate]] = []
    pool: dict[tuple[str, str | None], Candidate] = {}
    for r in reads:
        cands = fit(r.dists, country_hint, separators=r.separators) if len(r.dists) else []
        fitted.append({(c.normalized, c.country): c for c in cands})
        for c in cands[:ENSEMBLE_TOP]:
            if len(c.normalized) >= MIN_PLATE_LENGTH:
                pool.setdefault((c.normalized, c.country), c)
    scale = max(len(r.dists) for r in reads) or 1
    out: list[Candidate] = []
    for key, cand in pool.items():
        allowed, prior = _allowed_for(cand)
        score = 0.0
        logs = [0.0] * len(cand.normalized)
        weights = [0.0] * len(cand.normalized)
        for r, own in zip(reads, fitted, strict=True):
            w = r.weight / total
            mine = own.get(key)
            confs: Sequence[float | None]
            if mine is not None:
                total_log, confs = mine.score * len(r.dists), mine.char_confidences
            else:
                loglik, confs = align(r.dists, cand.normalized, allowed)
                total_log = loglik + math.log(prior)
            score += w * total_log / scale
            for j, lent_raw in enumerate(confs):
                if lent_raw is None:
                    continue
                lent = r.floor + (1.0 - r.floor) * lent_raw
                logs[j] += w * math.log(max(lent, 1e-6))
                weights[j] += w
        combined = tuple(
            math.exp(v / wt) if wt > 0 else MISSING_CONF
            for v, wt in zip(logs, weights, strict=True)
        )
        out.append(replace(cand, char_confidences=combined, score=score))
    return sorted(out, key=lambda c: c.score, reverse=True)
