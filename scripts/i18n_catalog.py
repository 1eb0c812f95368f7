"""Write a gettext catalog (``.po``) from a table of translations, through Babel.

    python scripts/i18n_catalog.py DOMAIN TABLE.py

``TABLE.py`` defines ``T = {msgid: (translation per language, in the order of LANGUAGES)}`` and
``LANGUAGES``; English maps every message to itself. A catalog that exists keeps its messages:
the table's are added (or replace theirs), so a table may hold only the new messages. The
catalogs are then edited as ``.po`` files like any other; ``tests/unit/test_catalogs.py``
checks them against the code (every message used has each translation, none is unused)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]


def main(domain: str, table: str) -> None:
    ns = runpy.run_path(table)
    languages: tuple[str, ...] = ns["LANGUAGES"]
    rows: dict[str, tuple[str, ...]] = ns["T"]
    for i, lang in enumerate(("en", *languages)):
        cat = Catalog(locale=lang, domain=domain, project="lez", charset="utf-8", fuzzy=False)
        out = ROOT / "fines" / "locale" / lang / "LC_MESSAGES" / f"{domain}.po"
        if out.exists():
            with out.open("rb") as f:
                for m in read_po(f, locale=lang, domain=domain):
                    if m.id:
                        cat.add(m.id, m.string)
        for msgid, tr in rows.items():
            cat.add(msgid, msgid if lang == "en" else tr[i - 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            write_po(f, cat, width=100, omit_header=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
