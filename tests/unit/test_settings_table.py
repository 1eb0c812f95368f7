"""Every setting is in the README's configuration table (issue 24): the table is compared with
the fields of every settings slice (``lez.app.settings.slices()``), both ways."""

from __future__ import annotations

import re
from pathlib import Path

from lez.app.settings import slices

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
NOT_SETTINGS = {"LEZ_KAFKA_LIBS"}
"""Variables the table documents that no slice holds (read by the test tooling alone)."""


def _table() -> set[str]:
    section = README[README.index("## Configuration") :]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| `LEZ_")]
    return {v for row in rows for v in re.findall(r"`(LEZ_[A-Z0-9_]+)`", row.split(" | ")[0])}


def _fields() -> set[str]:
    return {f"LEZ_{name.upper()}" for s in slices() for name in s.model_fields}


def test_every_setting_of_every_slice_is_in_the_configuration_table() -> None:
    missing = sorted(_fields() - _table())
    # Set by lez replay for the workers it starts, never by hand: explained under the table.
    missing = [m for m in missing if m != "LEZ_REPLAY_GROUND_TRUTH" or m not in README]
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    unknown = sorted(_table() - _fields() - NOT_SETTINGS)
    assert not unknown, f"the configuration table names unknown settings: {unknown}"


def test_the_slices_cover_the_settings_a_process_reads() -> None:
    from lez.app.settings import Settings

    assert {f"LEZ_{n.upper()}" for n in Settings.model_fields} == _fields()
