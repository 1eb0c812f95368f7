"""Europe's plate systems as data (``data/plate-systems.yaml``), loaded and checked.

One entry per country: the codes printed in its blue band, whether that band carries the EU
stars, the band at the right end, the colours of the ground and the characters, and the plate
formats with a rough prior (the share of the passages in Brussels). A format is a template such
as ``D-LLL-DDD`` (``L`` a letter, ``D`` a digit, ``A`` either, ``-``, ``.`` or a space a
separator as printed), like the plate reader's grammar; this module does not import it (lez.core
imports no stage package).

Nothing is read at import time: :func:`load_plate_systems` reads the file on first use.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lez.core.plates import normalize_plate

DEFAULT_PLATE_SYSTEMS_FILE = "plate-systems.yaml"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
CLASSES = "LDA"
"""Template characters: ``L`` a letter, ``D`` a digit, ``A`` either."""
SEPARATORS = " -."
"""Template characters printed as they are (not part of the normalised text)."""
STATUSES = ("valid", "plausible")
NO_BAND = "none"
PRIOR_TOLERANCE = 1e-9

_TOP_KEYS = frozenset({"countries", "shared_band_codes"})
_COUNTRY_REQUIRED = frozenset(
    {"name", "band_codes", "eu_band", "national_band", "right_band", "ground", "characters"}
    | {"prior", "formats"}
)
_COUNTRY_OPTIONAL = frozenset({"ground_rear", "hyphens_printed", "hyphen_free", "notes"})
_FORMAT_REQUIRED = frozenset({"template", "status", "samples"})
_FORMAT_OPTIONAL = frozenset({"letters", "first_digits", "prior", "notes"})
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_BAND_CODE = re.compile(r"[A-Z]{1,3}")
_COLOUR = re.compile(r"[a-z]+(-[a-z]+)*")


@dataclass(frozen=True)
class PlateSystemFormat:
    """One plate format of a country (the same semantics as the grammar's ``PlateFormat``)."""

    country: str
    template: str
    letters: str = LETTERS
    first_digits: str = DIGITS
    valid: bool = True
    """The standard series whose layout identifies the format well; ``False``: plausible only
    (accepted as a plate, never auto-fined on the read alone)."""
    prior: float = 0.01
    samples: tuple[str, ...] = ()
    notes: str = ""

    @functools.cached_property
    def classes(self) -> str:
        """The template's character classes (``D-LLL-DDD`` -> ``DLLLDDD``), worked out once: the
        reader asks for them a few hundred times a frame."""
        return "".join(c for c in self.template if c in CLASSES)

    @functools.cached_property
    def length(self) -> int:
        return len(self.classes)

    def allowed(self, position: int) -> str:
        """The characters allowed at ``position`` of the normalised text."""
        cls = self.classes[position]
        if cls == "L":
            return self.letters
        if cls == "D":
            return self.first_digits if position == 0 else DIGITS
        return self.letters + DIGITS

    @property
    def hyphens(self) -> frozenset[int]:
        """Indexes of the characters a hyphen is printed before (``LL-DDD-LL``: 2 and 5)."""
        out: set[int] = set()
        count = 0
        for c in self.template:
            if c in CLASSES:
                count += 1
            elif c == "-":
                out.add(count)
        return frozenset(out)

    def matches(self, normalized: str) -> bool:
        """Whether the normalised text (upper case, letters and digits only) fits the format."""
        return len(normalized) == self.length and all(
            ch in self.allowed(i) for i, ch in enumerate(normalized)
        )


@dataclass(frozen=True)
class PlateSystem:
    """A country's plates."""

    code: str
    """ISO 3166 alpha-2 (GB for the UK)."""
    name: str
    band_codes: tuple[str, ...]
    """Codes printed in the blue band at the plate's left end; empty without a band."""
    eu_band: bool
    """The band carries the EU stars."""
    national_band: bool
    """A blue band without the EU stars (a flag or an emblem above the code)."""
    right_band: str
    """``none`` or the colour of a band at the plate's right end (``blue``, ``yellow``)."""
    ground: str
    ground_rear: str
    """The rear plate's ground (the same as ``ground`` unless the table says otherwise)."""
    characters: str
    prior: float
    """Rough share of the passages in Brussels with this country's plates."""
    formats: tuple[PlateSystemFormat, ...]
    notes: str = ""
    hyphens_printed: bool = True
    """The ``-`` of the formats' templates is printed on the plate as a hyphen; ``False`` where
    plates may carry an emblem in that gap instead (the seals of DE plates, the coat of arms of
    SK ones): no hyphen seen there then rules nothing out."""
    hyphen_free: bool = False
    """No hyphen is ever printed on the country's plates (the templates' ``-`` is only the
    written form's: DE's registration seals sit there): a hyphen seen rules the country out."""

    @property
    def grounds(self) -> frozenset[str]:
        return frozenset({self.ground, self.ground_rear})


@dataclass(frozen=True)
class PlateSystems:
    """The table: countries in table order and queries over them."""

    countries: Mapping[str, PlateSystem]
    shared_band_codes: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    """Band codes that several countries deliberately share (they establish none of them)."""

    @property
    def formats(self) -> tuple[PlateSystemFormat, ...]:
        """All formats: countries in table order, each country's formats in order."""
        return tuple(f for system in self.countries.values() for f in system.formats)

    def fitting(self, text: str) -> tuple[str, ...]:
        """The countries with a format (valid or plausible) the text fits, normalised first;
        the likeliest first (highest prior of a fitting format, then table order)."""
        norm = normalize_plate(text)
        best: dict[str, float] = {}
        for f in self.formats:
            if f.matches(norm):
                best[f.country] = max(best.get(f.country, 0.0), f.prior)
        return tuple(sorted(best, key=lambda c: best[c], reverse=True))

    def printed(self, text: str, country: str) -> str:
        """The plate as ``country`` prints it (``AB123CD``/IT -> ``AB 123 CD``): the template
        of its likeliest format the text fits; the normalised text when none fits."""
        norm = normalize_plate(text)
        system = self.countries.get(country.strip().upper())
        fits = [f for f in system.formats if f.matches(norm)] if system is not None else []
        if not fits:
            return norm
        template = max(fits, key=lambda f: f.prior).template
        chars = iter(norm)
        return "".join(next(chars) if c in CLASSES else c for c in template)

    def band_codes(self) -> dict[str, str]:
        """Band code -> country, for every band code that names a single country."""
        return {
            code: system.code
            for system in self.countries.values()
            for code in system.band_codes
            if code not in self.shared_band_codes
        }

    def band_country(self, code: str) -> str | None:
        """The country whose band shows ``code``; ``None`` for an unknown or shared code."""
        return self.band_codes().get(code.strip().upper())

    def with_right_band(self, colour: str) -> frozenset[str]:
        """Countries whose plates have a band of ``colour`` at the right end (``none``: none)."""
        colour = colour.strip().lower()
        return frozenset(c for c, s in self.countries.items() if s.right_band == colour)

    def with_ground(self, colour: str) -> frozenset[str]:
        """Countries whose front or rear plates have a ground of ``colour``."""
        colour = colour.strip().lower()
        return frozenset(c for c, s in self.countries.items() if colour in s.grounds)

    def with_characters(self, colour: str) -> frozenset[str]:
        """Countries whose plates have characters of ``colour``."""
        colour = colour.strip().lower()
        return frozenset(c for c, s in self.countries.items() if s.characters == colour)

    # ------------------------------------------------------------------------------ loading

    @classmethod
    def from_mapping(cls, raw: object, source: str = "<plate systems>") -> PlateSystems:
        """Build and check the table from its parsed YAML; ``ValueError`` naming the country
        and the field on any problem."""
        top = _mapping(raw, source)
        _keys(top, frozenset({"countries"}), _TOP_KEYS - {"countries"}, source)
        countries_raw = _mapping(top["countries"], f"{source}: countries")
        if not countries_raw:
            raise ValueError(f"{source}: countries: empty")
        countries: dict[str, PlateSystem] = {}
        for key, value in countries_raw.items():
            if not isinstance(key, str) or not _COUNTRY_CODE.fullmatch(key):
                raise ValueError(
                    f"{source}: country key {key!r}: two upper-case letters (ISO 3166 alpha-2);"
                    " quote NO, YAML reads it as false"
                )
            countries[key] = _country(key, value, f"{source}: {key}")
        shared = _shared_band_codes(top.get("shared_band_codes") or {}, source)
        _check_band_codes(countries, shared, source)
        return cls(MappingProxyType(countries), MappingProxyType(shared))


@functools.cache
def load_plate_systems(path: Path | None = None) -> PlateSystems:
    """The plate systems table; ``None`` = the file shipped with the package. Cached: read
    and checked once per path."""
    path = path if path is not None else Path(__file__).parent / "data" / DEFAULT_PLATE_SYSTEMS_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read plate systems: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML: {exc}") from exc
    return PlateSystems.from_mapping(raw, str(path))


# ------------------------------------------------------------------------------- checking


def _mapping(value: object, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _keys(
    raw: Mapping[Any, Any], required: frozenset[str], optional: frozenset[str], where: str
) -> None:
    unknown = sorted(str(k) for k in raw if k not in required | optional)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(required - set(raw))
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)}")


def _text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _flag(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _colour(value: object, where: str, allow_none: bool = False) -> str:
    colour = _text(value, where)
    if not _COLOUR.fullmatch(colour) or (colour == NO_BAND and not allow_none):
        raise ValueError(f"{where}: {colour!r} is not a colour word")
    return colour


def _prior(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    prior = float(value)
    if not 0.0 < prior <= 1.0 or math.isnan(prior):
        raise ValueError(f"{where}: {prior} is not in (0, 1]")
    return prior


def _charset(value: object, alphabet: str, where: str) -> str:
    chars = _text(value, where)
    bad = sorted({c for c in chars if c not in alphabet})
    if bad:
        raise ValueError(f"{where}: {''.join(bad)!r} outside {alphabet[0]}-{alphabet[-1]}")
    if len(set(chars)) != len(chars):
        raise ValueError(f"{where}: {chars!r} repeats a character")
    return chars


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {value!r}")
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"{where}: {item!r} is not a string (quote it)")
    return value


def _country(code: str, value: object, where: str) -> PlateSystem:
    raw = _mapping(value, where)
    _keys(raw, _COUNTRY_REQUIRED, _COUNTRY_OPTIONAL, where)
    band_codes = _string_list(raw["band_codes"], f"{where}: band_codes")
    for band in band_codes:
        if not _BAND_CODE.fullmatch(band):
            raise ValueError(f"{where}: band_codes: {band!r} is not 1-3 upper-case letters")
    if len(set(band_codes)) != len(band_codes):
        raise ValueError(f"{where}: band_codes: a code is listed twice")
    eu_band = _flag(raw["eu_band"], f"{where}: eu_band")
    national_band = _flag(raw["national_band"], f"{where}: national_band")
    if eu_band and national_band:
        raise ValueError(f"{where}: eu_band and national_band: a band has EU stars or not")
    ground = _colour(raw["ground"], f"{where}: ground")
    prior = _prior(raw["prior"], f"{where}: prior")
    formats_raw = raw["formats"]
    if not isinstance(formats_raw, list) or not formats_raw:
        raise ValueError(f"{where}: formats: expected a non-empty list")
    parsed = [_format(code, f, f"{where}: formats[{i}]") for i, f in enumerate(formats_raw)]
    seen: set[tuple[str, str, str]] = set()
    for fmt, _ in parsed:
        ident = (fmt.template, fmt.letters, fmt.first_digits)
        if ident in seen:
            raise ValueError(f"{where}: formats: {fmt.template!r} is listed twice")
        seen.add(ident)
    formats = _share_prior(parsed, prior, where)
    return PlateSystem(
        code=code,
        name=_text(raw["name"], f"{where}: name"),
        band_codes=tuple(band_codes),
        eu_band=eu_band,
        national_band=national_band,
        right_band=_colour(raw["right_band"], f"{where}: right_band", allow_none=True),
        ground=ground,
        ground_rear=_colour(raw.get("ground_rear", ground), f"{where}: ground_rear"),
        characters=_colour(raw["characters"], f"{where}: characters"),
        prior=prior,
        formats=formats,
        notes=_text(raw["notes"], f"{where}: notes") if "notes" in raw else "",
        hyphens_printed=(
            _flag(raw["hyphens_printed"], f"{where}: hyphens_printed")
            if "hyphens_printed" in raw
            else True
        ),
        hyphen_free=(
            _flag(raw["hyphen_free"], f"{where}: hyphen_free") if "hyphen_free" in raw else False
        ),
    )


def _format(country: str, value: object, where: str) -> tuple[PlateSystemFormat, float | None]:
    """The format (its prior still a placeholder) and its own prior, if it has one."""
    raw = _mapping(value, where)
    _keys(raw, _FORMAT_REQUIRED, _FORMAT_OPTIONAL, where)
    template = _text(raw["template"], f"{where}: template")
    bad = sorted({c for c in template if c not in CLASSES + SEPARATORS})
    if bad:
        raise ValueError(
            f"{where}: template {template!r}: bad template character(s) {''.join(bad)!r}"
            f" (L, D, A or a separator {SEPARATORS!r})"
        )
    if not any(c in CLASSES for c in template):
        raise ValueError(f"{where}: template {template!r} has no character position")
    status = raw["status"]
    if status not in STATUSES:
        raise ValueError(f"{where}: status: {status!r} is not one of {', '.join(STATUSES)}")
    letters = _charset(raw.get("letters", LETTERS), LETTERS, f"{where}: letters")
    first_digits = _charset(raw.get("first_digits", DIGITS), DIGITS, f"{where}: first_digits")
    samples = _string_list(raw["samples"], f"{where}: samples")
    if not samples:
        raise ValueError(f"{where}: samples: give at least one sample plate")
    own_prior = _prior(raw["prior"], f"{where}: prior") if "prior" in raw else None
    fmt = PlateSystemFormat(
        country=country,
        template=template,
        letters=letters,
        first_digits=first_digits,
        valid=status == "valid",
        samples=tuple(samples),
        notes=_text(raw["notes"], f"{where}: notes") if "notes" in raw else "",
    )
    for sample in samples:
        if not fmt.matches(normalize_plate(sample)):
            raise ValueError(f"{where}: samples: {sample!r} does not match template {template!r}")
    return fmt, own_prior


def _share_prior(
    parsed: list[tuple[PlateSystemFormat, float | None]], total: float, where: str
) -> tuple[PlateSystemFormat, ...]:
    """Formats without their own prior share equally what those with one leave of ``total``;
    when every format has its own, they must add up to ``total``."""
    own = sum(p for _, p in parsed if p is not None)
    shares = sum(1 for _, p in parsed if p is None)
    if shares == 0:
        if abs(own - total) > PRIOR_TOLERANCE:
            raise ValueError(f"{where}: prior: {total} but the formats' priors add up to {own}")
        return tuple(_with_prior(f, p) for f, p in parsed if p is not None)
    left = total - own
    if left <= PRIOR_TOLERANCE:
        raise ValueError(f"{where}: prior: {total} leaves nothing for the formats without one")
    share = left / shares
    return tuple(_with_prior(f, share if p is None else p) for f, p in parsed)


def _with_prior(fmt: PlateSystemFormat, prior: float) -> PlateSystemFormat:
    return PlateSystemFormat(
        fmt.country,
        fmt.template,
        fmt.letters,
        fmt.first_digits,
        fmt.valid,
        prior,
        fmt.samples,
        fmt.notes,
    )


def _shared_band_codes(value: object, source: str) -> dict[str, tuple[str, ...]]:
    where = f"{source}: shared_band_codes"
    out: dict[str, tuple[str, ...]] = {}
    for code, countries in _mapping(value, where).items():
        if not isinstance(code, str) or not _BAND_CODE.fullmatch(code):
            raise ValueError(f"{where}: {code!r} is not 1-3 upper-case letters")
        listed = _string_list(countries, f"{where}: {code}")
        out[code] = tuple(listed)
    return out


def _check_band_codes(
    countries: Mapping[str, PlateSystem], shared: Mapping[str, Iterable[str]], source: str
) -> None:
    holders: dict[str, list[str]] = {}
    for system in countries.values():
        for code in system.band_codes:
            holders.setdefault(code, []).append(system.code)
    for code, owners in holders.items():
        if len(owners) > 1 and sorted(shared.get(code, ())) != sorted(owners):
            raise ValueError(
                f"{source}: {owners[-1]}: band_codes: {code!r} is also a band code of"
                f" {', '.join(owners[:-1])} (list it under shared_band_codes if deliberate)"
            )
    for code, listed in shared.items():
        if sorted(holders.get(code, ())) != sorted(listed):
            raise ValueError(
                f"{source}: shared_band_codes: {code!r} is a band code of"
                f" {', '.join(holders.get(code, [])) or 'no country'}, not of"
                f" {', '.join(listed)}"
            )
