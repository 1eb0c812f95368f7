"""``lez payments match FILE``: the app builds the settings and the database session and hands
them to the fines stage's matcher (no stage reads the environment); one line per payment, exit
1 when one matches no notice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from fines.models import Notice
from fines.payments import reference_of
from fines.structured_ref import format_reference
from lez.app.cli import main
from tests.integration.test_payments import _notices

pytestmark = pytest.mark.integration



def test_lez_payments_match(
    db_url: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (notice_id,) = _notices(sessions, 1)
    with sessions() as s:
        ref = format_reference(reference_of(s, notice_id) or "")
        amount = s.get(Notice, notice_id).amount_eur  # type: ignore[union-attr]
    paid = tmp_path / "payments.txt"
    paid.write_text(f"{ref} EUR {amount}\n", encoding="utf-8")
    monkeypatch.setenv("LEZ_DATABASE_URL", db_url)
    assert main(["payments", "match", str(paid)]) == 0
    assert capsys.readouterr().out == f"1\t{ref}\t{notice_id}\tok\n"
    paid.write_text(f"{ref} EUR {amount}\n+++123/4567/89002+++ EUR 10\n", encoding="utf-8")
    assert main(["payments", "match", str(paid)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"1\t{ref}\t{notice_id}\tok"
    assert lines[1] == "2\t+++123/4567/89002+++\t-\tno notice has this reference"
