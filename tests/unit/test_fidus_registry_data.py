"""Loading registry.csv / exemptions.csv, the in-memory registry, and check_scenario."""

from __future__ import annotations

import io
import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lez.app.sim import check_scenario
from lez.app.sim.errors import ScenarioError
from lez.app.sim.registry_data import (
    Registry,
    load_exemptions,
    load_registry,
    load_registry_dir,
    plate_key,
)

BXL = ZoneInfo("Europe/Brussels")
# ../shared/data beside the repository: read only by the tests marked ``bench`` (deselected in
# `make test`; run them with `pytest -m bench`).
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SCENARIO = SHARED_DATA / "scenario-example"

HEADER = (
    "plate,country,vin,make,model,category,fuel,euro_norm,first_registration,"
    "holder_name,holder_address"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


class TestRegistryCsv:
    def test_load(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "registry.csv",
            f"{HEADER}\n"
            '1-ABC-123,BE,VIN1,Ford,Focus,M1,diesel,,2008-03-01,J. Lambert,"Rue Haute 1, 1000"\n'
            "JB 5785,lu,VIN2,Skoda,Golf,n1,petrol,6,,A. Peeters,Kerkstraat 2\n",
        )
        first, second = load_registry(path)
        assert first.record.euro_norm is None
        assert first.record.first_registration == date(2008, 3, 1)
        assert first.record.holder_address == "Rue Haute 1, 1000"
        assert (first.valid_from, first.valid_to) == (None, None)
        assert second.record.country == "LU"
        assert second.record.category == "N1"
        assert second.record.euro_norm == 6
        assert second.record.first_registration is None
        assert second.key == ("JB5785", "LU")

    @pytest.mark.parametrize(
        ("row", "message"),
        [
            (",BE,V,M,M,M1,diesel,4,2008-03-01,H,A", "line 2: plate is empty"),
            ("1-ABC-123,BE,V,M,M,M1,diesle,4,2008-03-01,H,A", "line 2: fuel 'diesle'"),
            ("1-ABC-123,BE,V,M,M,M1,diesel,7,2008-03-01,H,A", "line 2: euro_norm '7'"),
            ("1-ABC-123,BE,V,M,M,M1,diesel,IV,2008-03-01,H,A", "line 2: euro_norm 'IV'"),
            ("1-ABC-123,BE,V,M,M,M1,diesel,4,01/03/2008,H,A", "line 2: first_registration"),
            ("1-ABC-123,BE,V,M,M,M1,diesel,4,2008-03-01,H,A,extra", "line 2: more fields"),
            ("---,BE,V,M,M,M1,diesel,4,2008-03-01,H,A", "no letter or digit"),
        ],
    )
    def test_bad_rows(self, tmp_path: Path, row: str, message: str) -> None:
        path = write(tmp_path, "registry.csv", f"{HEADER}\n{row}\n")
        with pytest.raises(ScenarioError, match=message) as info:
            load_registry(path)
        assert info.value.path == str(path)

    def test_line_numbers_count_header(self, tmp_path: Path) -> None:
        good = "1-ABC-123,BE,V,M,M,M1,diesel,4,2008-03-01,H,A"
        path = write(tmp_path, "registry.csv", f"{HEADER}\n{good}\n{good}\n{good[:-1]}x,y\n")
        with pytest.raises(ScenarioError, match="line 4"):
            load_registry(path)

    def test_missing_column(self, tmp_path: Path) -> None:
        path = write(tmp_path, "registry.csv", "plate,country\n1-ABC-123,BE\n")
        with pytest.raises(ScenarioError, match="line 1: missing column"):
            load_registry(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ScenarioError, match="cannot read"):
            load_registry(tmp_path / "nope.csv")

    def test_validity_and_flags(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "registry.csv",
            f"{HEADER},valid_from,valid_to,flags\n"
            "1-ABC-123,BE,OLD,M,M,M1,diesel,2,2000-01-01,H,A,,2023-05-31,\n"
            "1-ABC-123,BE,NEW,M,M,M1,diesel,2,2000-01-01,H,A,2023-06-01,,priority;army\n",
        )
        old, new = load_registry(path)
        assert (old.valid_from, old.valid_to) == (None, date(2023, 5, 31))
        assert new.record.flags == ("priority", "army")
        registry = Registry([old, new])
        assert [v.vin for v in registry.vehicles_at("1abc123", "BE", date(2023, 5, 31))] == ["OLD"]
        late = datetime(2023, 5, 31, 23, 30, tzinfo=ZoneInfo("UTC"))  # June 1st in Brussels
        assert [v.vin for v in registry.vehicles_at("1-ABC-123", "be", late)] == ["NEW"]

    def test_validity_reversed(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "registry.csv",
            f"{HEADER},valid_from,valid_to\n"
            "1-ABC-123,BE,V,M,M,M1,diesel,2,2000-01-01,H,A,2023-06-01,2023-05-01\n",
        )
        with pytest.raises(ScenarioError, match="line 2: valid_to before valid_from"):
            load_registry(path)


class TestExemptionsCsv:
    def test_load(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "exemptions.csv",
            "plate,country,kind,valid_from,valid_to\n1-EBA-114,BE,day_pass,2023-04-24,2023-04-24\n",
        )
        (e,) = load_exemptions(path, {"day_pass"})
        assert (e.kind, e.valid_from, e.valid_to) == (
            "day_pass",
            date(2023, 4, 24),
            date(2023, 4, 24),
        )

    @pytest.mark.parametrize(
        ("row", "message"),
        [
            ("1-A,BE,disabeld,2023-01-01,2023-12-31", "line 2: kind 'disabeld'"),
            ("1-A,BE,disabled,,2023-12-31", "line 2: valid_from is empty"),
            ("1-A,BE,disabled,2023-12-31,2023-01-01", "line 2: valid_to before valid_from"),
            ("1-A,,disabled,2023-01-01,2023-12-31", "line 2: country is empty"),
        ],
    )
    def test_bad_rows(self, tmp_path: Path, row: str, message: str) -> None:
        path = write(tmp_path, "exemptions.csv", f"plate,country,kind,valid_from,valid_to\n{row}\n")
        with pytest.raises(ScenarioError, match=message):
            load_exemptions(path, {"disabled", "day_pass"})

    def test_unknown_kind_allowed_without_known_kinds(self, tmp_path: Path) -> None:
        path = write(
            tmp_path,
            "exemptions.csv",
            "plate,country,kind,valid_from,valid_to\n1-A,BE,future_kind,2023-01-01,2023-12-31\n",
        )
        assert load_exemptions(path)[0].kind == "future_kind"


def test_plate_key() -> None:
    assert plate_key("1-abc-123", " be ") == ("1ABC123", "BE")


# --------------------------------------------------------------------------- check_scenario


def _mini_scenario(tmp_path: Path) -> Path:
    """Three passages: a repeat fine within the latency, and an unknown Belgian plate."""
    write(
        tmp_path,
        "registry.csv",
        f"{HEADER}\n1-ABC-123,BE,V,M,M,M1,diesel,,2004-02-15,H,A\n",
    )
    write(tmp_path, "exemptions.csv", "plate,country,kind,valid_from,valid_to\n")
    write(
        tmp_path,
        "frames.csv",
        "file,camera_id,captured_at,plate,country\n"
        "f/0.jpg,CAM-1,2023-08-13T16:43:00.000+01:00,1-ABC-123,BE\n"
        "f/1.jpg,CAM-1,2023-08-13T16:43:00.250+01:00,1-ABC-123,BE\n"
        "f/2.jpg,CAM-1,2023-09-13T16:43:00.000+01:00,1-ABC-123,BE\n"
        "f/3.jpg,CAM-2,2023-09-13T16:43:00.100+01:00,9-ZZZ-999,BE\n"
        "f/4.jpg,CAM-2,2023-09-14T10:00:00.000+01:00,DW-517-CW,FR\n",
    )
    expected = [
        {
            "plate": "1-ABC-123",
            "country": "BE",
            "kind": "fine",
            "amount_eur": 350,
            "date": "2023-08-13",
        },
        {
            "plate": "DW-517-CW",
            "country": "FR",
            "kind": "unregistered_foreign",
            "amount_eur": 150,
            "date": "2023-09-14",
        },
    ]
    (tmp_path / "expected.json").write_text(json.dumps([{"passage": 0, "notices": expected}]))
    return tmp_path


def test_check_scenario_passages(tmp_path: Path) -> None:
    passages = check_scenario.read_passages(_mini_scenario(tmp_path) / "frames.csv")
    assert [(p.camera_id, p.plate, p.frames) for p in passages] == [
        ("CAM-1", "1-ABC-123", 2),
        ("CAM-1", "1-ABC-123", 1),
        ("CAM-2", "9-ZZZ-999", 1),
        ("CAM-2", "DW-517-CW", 1),
    ]


def test_check_scenario_mini(tmp_path: Path) -> None:
    out = io.StringIO()
    assert check_scenario.main([str(_mini_scenario(tmp_path)), "-v"], out=out) == 0
    text = out.getvalue()
    assert "after history: 2 notices, expected 2: 0 unexpected, 0 missing" in text
    assert "before history (latency, one warning per phase): 3 notices" in text


def test_check_scenario_reports_mismatch(tmp_path: Path) -> None:
    directory = _mini_scenario(tmp_path)
    (directory / "expected.json").write_text("[]")
    out = io.StringIO()
    assert check_scenario.main([str(directory)], out=out) == 1
    assert "unexpected 1ABC123 BE fine 350 2023-08-13" in out.getvalue()


def test_check_scenario_bad_dir(tmp_path: Path) -> None:
    assert check_scenario.main([str(tmp_path / "nope")], out=io.StringIO()) == 2


@pytest.fixture
def shared_scenario() -> Path:
    """``../shared/data/scenario-example``; a benchmark run without it fails (never skips)."""
    assert SCENARIO.is_dir(), f"benchmarks need {SCENARIO.resolve()} beside the repository"
    return SCENARIO


@pytest.mark.bench
def test_shared_scenario_example_reproduces_expected(shared_scenario: Path) -> None:
    out = io.StringIO()
    assert check_scenario.main([str(shared_scenario)], out=out) == 0, out.getvalue()


@pytest.mark.bench
def test_shared_scenario_registry_loads(shared_scenario: Path) -> None:
    registry = load_registry_dir(shared_scenario)
    assert len(registry) > 1000
    at = datetime(2023, 4, 24, 13, 39, tzinfo=BXL)
    assert registry.vehicles_at("1-EBA-114", "BE", at)[0].euro_norm == 2
    assert registry.exemptions_for("1EBA114", "BE")[0].kind == "day_pass"
