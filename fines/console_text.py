"""The console's words for what is not written in a template: the values it lists (notice
statuses and kinds, decisions, roles, registry answers, fuels) and the refusals of the domain
(:mod:`fines.errors`, raised by review, accounts and payments), in the operator's language.

The domain raises its errors in English (they go to logs and to the JSON API as they are);
a page shows them through :func:`error_text`, which reads the error's fields and words them
from the ``console`` catalog. Messages written here are marked with :func:`N_` (the catalog
test extracts ``_`` and ``N_``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from fines.i18n import Gettext


def N_(text: str) -> str:  # noqa: N802 - gettext's name for a message marked, not translated
    """Mark ``text`` as a message of the catalog; it is translated where it is shown."""
    return text


VALUE_LABELS: Mapping[str, str] = {
    # notice statuses
    "pending_review": N_("pending review"),
    "issued": N_("issued"),
    "paid": N_("paid"),
    "contested": N_("contested"),
    "upheld": N_("upheld"),
    "cancelled": N_("cancelled"),
    "superseded": N_("superseded"),
    # notice kinds and decisions
    "fine": N_("fine"),
    "warning": N_("warning"),
    "unregistered_foreign": N_("unregistered foreign vehicle"),
    "compliant": N_("compliant"),
    "exempt": N_("exempt"),
    "violation": N_("violation"),
    "review": N_("review"),
    "unreadable": N_("unreadable"),
    # candidate vehicles of a review item
    "lookalike": N_("look-alike"),
    "other_country": N_("other country"),
    # where a read's country came from, and look-alikes
    "band": N_("EU band"),
    "colour": N_("colours"),
    "layout": N_("layout"),
    "format": N_("format"),
    "none": N_("nothing"),
    "leading digit added": N_("leading digit added"),
    "leading digit dropped": N_("leading digit dropped"),
    # review items
    "open": N_("open"),
    "confirmed": N_("confirmed"),
    "corrected": N_("corrected"),
    "rejected": N_("rejected"),
    # roles
    "operator": N_("operator"),
    "supervisor": N_("supervisor"),
    "auditor": N_("auditor"),
    # the registry as the dashboard sees it, and its answers
    "up": N_("up"),
    "degraded": N_("degraded"),
    "unavailable": N_("unavailable"),
    "no calls": N_("no calls"),
    "answered": N_("answered"),
    "refused": N_("refused"),
    "error": N_("error"),
    "found": N_("found"),
    "not_found": N_("not found"),
    "ambiguous": N_("ambiguous"),
    "hit": N_("hit"),
    "no_hit": N_("no hit"),
    # consumer lag
    "ok": N_("ok"),
    "not configured": N_("not configured"),
    "unknown": N_("unknown"),
    # fuels
    "petrol": N_("petrol"),
    "diesel": N_("diesel"),
    "lpg": N_("LPG"),
    "cng": N_("CNG"),
    "electric": N_("electric"),
    "hydrogen": N_("hydrogen"),
    "petrol_hybrid": N_("petrol hybrid"),
    "diesel_hybrid": N_("diesel hybrid"),
}
"""A value the console lists -> its English words (the message id)."""


def label(_: Gettext, value: object) -> str:
    """The words for ``value`` in the language of ``_`` (a value it does not know: as it is)."""
    if value is None:
        return "–"
    text = str(value)
    known = VALUE_LABELS.get(text)
    return _(known) if known is not None else text


@pass_context
def label_filter(context: Context, value: object) -> str:
    """``{{ n.status|label }}`` in a template: :func:`label` with the page's ``_``."""
    gettext: Gettext = context.get("_") or (lambda s: s)
    return label(gettext, value)


@pass_context
def kind_status_filter(context: Context, value: object) -> str:
    """``fine/issued`` (the dashboard's notice counts) as words: each part a :func:`label`."""
    gettext: Gettext = context.get("_") or (lambda s: s)
    return " / ".join(label(gettext, part) for part in str(value).split("/"))


# -- the domain's refusals ----------------------------------------------------------------

_REASONS: tuple[tuple[str, str], ...] = (
    # fines.review (review items, plate corrections)
    (r"already (?P<status>\w+) by (?P<actor>.*)", N_("already {status} by {actor}")),
    (
        r"no notice to confirm: correct the plate or reject",
        N_("no notice to confirm: correct the plate or reject"),
    ),
    (r"a plate and a country are required", N_("a plate and a country are required")),
    (
        r"the registry returned several vehicles for (?P<plate>\S+)",
        N_("the registry returned several vehicles for {plate}"),
    ),
    (
        r"(?P<plate>\S+) \((?P<country>\w+)\) still needs review: (?P<why>.*)",
        N_("{plate} ({country}) still needs review: {why}"),
    ),
    (
        r"the day-pass purchase window is open until (?P<at>\S+): correct it after that",
        N_("the day-pass purchase window is open until {at}: correct it after that"),
    ),
    # fines.auth (accounts)
    (r"password is blank", N_("password is blank")),
    (
        r"password shorter than (?P<n>\d+) characters",
        N_("password shorter than {n} characters"),
    ),
    (r"password longer than (?P<n>\d+) characters", N_("password longer than {n} characters")),
    (r"password is the user name", N_("password is the user name")),
    (
        r"password too easy to guess.*",
        N_(
            "password too easy to guess (a common password, a word, a keyboard row or "
            "repeated characters): take a few unrelated words"
        ),
    ),
    (r"username must be 1 to 64 characters", N_("username must be 1 to 64 characters")),
    (r"unknown role .*", N_("unknown role")),
    (r"already exists", N_("already exists")),
    (r"no such account", N_("no such account")),
    (
        r"you cannot deactivate your own account",
        N_("you cannot deactivate your own account"),
    ),
    (r"current password is wrong", N_("current password is wrong")),
    (r"the new password is the current one", N_("the new password is the current one")),
    # fines.payments
    (r"no notice has this reference", N_("no notice has this reference")),
    (r"no notice", N_("no notice has this reference")),
    (r"notice is (?P<status>\w+)", N_("the notice is {status}")),
    (
        r"paid EUR (?P<paid>\S+), due EUR (?P<due>\S+)",
        N_("paid EUR {paid}, due EUR {due}"),
    ),
    (r"12 digits expected", N_("12 digits expected")),
    (r"check digits do not match", N_("check digits do not match")),
)
_LABELLED_FIELDS = frozenset({"status", "source", "why"})
"""Fields of a matched message that are values the console words (:func:`label`)."""

_FIXED: Mapping[str, str] = {
    # Starlette's and the routes' own HTTP errors
    "Not Found": N_("Not found"),
    "Method Not Allowed": N_("Method not allowed"),
    "invalid or missing form token; reload the page": N_(
        "invalid or missing form token; reload the page"
    ),
}
_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"role (?P<role>\w+) may not do this", N_("the role {role} may not do this")),
    (r"no review item (?P<id>\d+)", N_("no review item {id}")),
    (
        r"no plate region for review item (?P<id>\d+) frame (?P<idx>\d+)",
        N_("no plate region for review item {id} frame {idx}"),
    ),
)


_REVIEW_REASONS: tuple[tuple[str, str], ...] = (
    # fines.service and lez.core.certainty (why a read is not certain)
    (r"low confidence read", N_("low confidence read")),
    (
        r"low confidence read \((?P<conf>[\d.]+), not above (?P<threshold>[\d.]+)\)",
        N_("low confidence read ({conf}, not above {threshold})"),
    ),
    (r"doubt", N_("doubt")),
    (r"stands again", N_("stands again (the notice that held it back is gone)")),
    (r"no plate or no country read", N_("no plate or no country read")),
    (r"single-frame passage \((?P<n>\d+) frame\)", N_("single-frame passage ({n} frame)")),
    (
        r"frames disagree \((?P<agree>\d+)/(?P<n>\d+) agree\)",
        N_("frames disagree ({agree} of {n} agree)"),
    ),
    (r"plate format not valid for (?P<country>\w+)", N_("plate format not valid for {country}")),
    (
        r"no plate system known for the country \((?P<country>\w+)\): plausible only, never "
        r"fined on the read",
        N_("no plate system known for {country}: plausible only, never fined on the read"),
    ),
    (
        r"not a valid format of the country \((?P<country>\w+)\): plausible only, never fined "
        r"on the read",
        N_("not a valid format of {country}: plausible only, never fined on the read"),
    ),
    (
        r"country (?P<country>\w+) not established from the plate \(from (?P<source>\w+)\)",
        N_("country {country} not established from the plate (from its {source})"),
    ),
    # fidus_adapter: the candidate vehicles themselves are in the item's candidate rows
    (
        r"registered look-alike \((?P<why>[^)]*)\): (?P<plate>\S+) \((?P<country>\w+)\): .*",
        N_("registered look-alike ({why}): {plate} ({country}), see the candidate vehicles"),
    ),
    (
        r"registered under another country the read fits: (?P<plate>\S+) "
        r"\((?P<country>\w+)\): .*",
        N_(
            "registered under another country the read fits: {plate} ({country}), see the "
            "candidate vehicles"
        ),
    ),
    # the same, of a minimised passage (fines.service.forget_plates): no plate, no candidates
    (
        r"registered look-alike \((?P<why>[^)]*)\): \[plate removed\] \((?P<country>\w+)\): .*",
        N_("registered look-alike ({why}) in {country}: plate removed, the passage is minimised"),
    ),
    (
        r"registered under another country the read fits: \[plate removed\] "
        r"\((?P<country>\w+)\): .*",
        N_(
            "registered under another country the read fits ({country}): plate removed, the "
            "passage is minimised"
        ),
    ),
)


def review_reason(_: Gettext, reason: str) -> tuple[str, bool]:
    """Why an item is in review, in the language of ``_``, and whether it was worded so (a
    reason the console does not know is shown as the pipeline wrote it, in English)."""
    worded = _match(_, reason, _REVIEW_REASONS)
    return (worded, True) if worded is not None else (reason, False)


@pass_context
def review_reason_filter(context: Context, reason: object) -> tuple[str, bool]:
    """``{% set text, ours = r|review_reason %}``: :func:`review_reason` with the page's ``_``."""
    gettext: Gettext = context.get("_") or (lambda s: s)
    return review_reason(gettext, str(reason))


def reason_text(_: Gettext, reason: str) -> str:
    """A reason the domain gave (``ReviewError.reason``, ``AccountError.reason``,
    ``PaymentRefused.problem``) in the language of ``_``; one it does not know: as it is."""
    return _match(_, reason, _REASONS) or reason


def _match(_: Gettext, text: str, patterns: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, msgid in patterns:
        found = re.fullmatch(pattern, text)
        if found is not None:
            fields = {
                k: _field(_, v) if k in _LABELLED_FIELDS else v
                for k, v in found.groupdict().items()
            }
            return _(msgid).format(**fields)
    return None


def _field(_: Gettext, value: str) -> str:
    confused = re.fullmatch(r"(?P<pair>\w/\w) confusion", value)
    if confused is not None:
        return _("{pair} confusion").format(pair=confused["pair"])
    return label(_, value)


def _not_found(_: Gettext, exc: Any) -> str:
    what = {
        "notice": N_("no notice {key}"),
        "review item": N_("no review item {key}"),
        "evidence image": N_("no evidence image {key}"),
    }.get(str(exc.what))
    return _(what).format(key=exc.key) if what else str(exc)


def _transition(_: Gettext, exc: Any) -> str:
    return _("notice {notice}: {from_status} to {to_status} is not allowed").format(
        notice=str(exc.notice_id)[:8],
        from_status=label(_, exc.from_status),
        to_status=label(_, exc.to_status),
    )


def _review(_: Gettext, exc: Any) -> str:
    return _("review item {id}: {reason}").format(id=exc.item_id, reason=reason_text(_, exc.reason))


def _account(_: Gettext, exc: Any) -> str:
    return _("account {username}: {reason}").format(
        username=exc.username, reason=reason_text(_, exc.reason)
    )


def _throttled(_: Gettext, exc: Any) -> str:
    return _("Too many failed logins; try again in {seconds} seconds.").format(
        seconds=exc.retry_after_s
    )


def _payment(_: Gettext, exc: Any) -> str:
    return _("payment {reference}: {problem}").format(
        reference=exc.reference, problem=reason_text(_, exc.problem)
    )


def _fixed(message: str) -> Callable[[Gettext, Any], str]:
    return lambda _, exc: _(message)


def _handlers() -> dict[str, Callable[[Gettext, Any], str]]:
    return {
        "NotFound": _not_found,
        "NoticeTransitionError": _transition,
        "ReviewError": _review,
        "AccountError": _account,
        "WrongPassword": _account,
        "LoginThrottled": _throttled,
        "PaymentRefused": _payment,
        "MissingReason": _fixed(N_("a reason is required for every action")),
        "CorrectionUnavailable": _fixed(
            N_("plate correction needs the registry: no relookup configured")
        ),
        "RegistryUnavailable": _fixed(N_("the registry does not answer; try again later")),
        "PurposeRefused": _fixed(N_("the registry refused the lookup for this purpose")),
        "RegistryError": _fixed(N_("the registry gave no usable answer")),
    }


def error_text(_: Gettext, exc: BaseException) -> str:
    """A domain error as the console shows it, in the language of ``_`` (an error it does not
    know: its own English text)."""
    handlers = _handlers()
    for cls in type(exc).__mro__:
        handler = handlers.get(cls.__name__)
        if handler is not None:
            return handler(_, exc)
    return str(exc)


def http_error_text(_: Gettext, detail: str) -> str:
    """An HTTP error's detail (the routes' own, Starlette's) in the language of ``_``."""
    fixed = _FIXED.get(detail)
    if fixed is not None:
        return _(fixed)
    return _match(_, detail, _PATTERNS) or detail
