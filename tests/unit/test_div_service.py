"""The mock DIV (vehicle registry) service, through FastAPI's TestClient."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date

import pytest

from fidus_adapter.client import FidusSigner
from fidus_adapter.signing import PURPOSE_HEADER, Authority
from lez.app.sim.div_service import create_app
from lez.app.sim.registry_data import RegisteredVehicle
from lez.core.events import Exemption, VehicleRecord

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

LEZ = Authority("BXL-FISCALITE", b"lez-test-secret", frozenset({"lez_enforcement"}))
POLICE = Authority("POLICE-BXL", b"police-test-secret", frozenset({"police_hotlist"}))
AUTHORITIES = {a.name: a for a in (LEZ, POLICE)}
SIGNED = FidusSigner(LEZ.name, "test", LEZ.secret.decode())
HEADERS = {PURPOSE_HEADER: "lez_enforcement"}

CAR = VehicleRecord(
    plate="1-ABC-123",
    country="BE",
    vin="VIN1",
    make="Toyota",
    model="Yaris",
    fuel="diesel",
    euro_norm=None,
    first_registration=date(2008, 3, 1),
    holder_name="K. Maes",
)
# The plate 2-MOV-001 moved from one vehicle to another on 2023-06-01.
OLD = RegisteredVehicle(
    VehicleRecord(plate="2-MOV-001", country="BE", vin="OLD", fuel="diesel", euro_norm=2),
    valid_to=date(2023, 5, 31),
)
NEW = RegisteredVehicle(
    VehicleRecord(plate="2MOV001", country="BE", vin="NEW", fuel="electric"),
    valid_from=date(2023, 6, 1),
)
TWIN_A = VehicleRecord(plate="1-DUP-111", country="BE", vin="A", fuel="petrol", euro_norm=6)
TWIN_B = VehicleRecord(plate="1-DUP-111", country="BE", vin="B", fuel="petrol", euro_norm=6)
FOREIGN = VehicleRecord(plate="JB 5785", country="LU", vin="LU1", fuel="petrol", euro_norm=6)
EXEMPTIONS = [
    Exemption(
        plate="1-ABC-123",
        country="BE",
        kind="disabled",
        valid_from=date(2021, 1, 1),
        valid_to=date(2025, 12, 31),
    ),
    Exemption(
        plate="1-ABC-123",
        country="BE",
        kind="day_pass",
        valid_from=date(2023, 4, 24),
        valid_to=date(2023, 4, 24),
    ),
]
VEHICLES: list[VehicleRecord | RegisteredVehicle] = [CAR, OLD, NEW, TWIN_A, TWIN_B, FOREIGN]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(VEHICLES, EXEMPTIONS, authorities=AUTHORITIES)) as c:
        yield c


def get(client: TestClient, path: str, **params: str) -> tuple[int, object]:
    response = client.get(path, params=params, headers=HEADERS, auth=SIGNED)
    return response.status_code, response.json()


class TestVehicles:
    def test_health_needs_no_key(self, client: TestClient) -> None:
        response = client.get("/health")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"

    def test_found(self, client: TestClient) -> None:
        status, body = get(client, "/v1/vehicles", plate="1-ABC-123", country="BE")
        assert status == 200
        assert VehicleRecord.model_validate(body) == CAR

    @pytest.mark.parametrize(("plate", "country"), [("1abc123", "be"), ("1 ABC 123", "BE")])
    def test_plate_matched_normalised(self, client: TestClient, plate: str, country: str) -> None:
        status, body = get(client, "/v1/vehicles", plate=plate, country=country)
        assert status == 200
        assert isinstance(body, dict) and body["vin"] == "VIN1"

    def test_not_found(self, client: TestClient) -> None:
        assert get(client, "/v1/vehicles", plate="9-ZZZ-999", country="BE") == (
            404,
            {"detail": "not found"},
        )

    def test_country_matters(self, client: TestClient) -> None:
        assert get(client, "/v1/vehicles", plate="1-ABC-123", country="NL")[0] == 404

    def test_ambiguous(self, client: TestClient) -> None:
        status, body = get(client, "/v1/vehicles", plate="1-DUP-111", country="BE")
        assert status == 409
        assert isinstance(body, dict) and body["detail"] == "ambiguous"

    @pytest.mark.parametrize(
        ("when", "vin"),
        [
            ("2023-05-31T23:59:00+02:00", "OLD"),
            ("2023-05-31T22:30:00+00:00", "NEW"),  # 00:30 on June 1st in Brussels
            ("2023-06-01T08:00:00+02:00", "NEW"),
        ],
    )
    def test_plate_moves_between_vehicles(self, client: TestClient, when: str, vin: str) -> None:
        status, body = get(client, "/v1/vehicles", plate="2-MOV-001", country="BE", at=when)
        assert status == 200
        assert isinstance(body, dict) and body["vin"] == vin

    @pytest.mark.parametrize(
        "params",
        [
            {"country": "BE"},
            {"plate": "1-ABC-123"},
            {"plate": "", "country": "BE"},
            {"plate": "1-ABC-123", "country": "BE1"},
            {"plate": "1-ABC-123", "country": "BE", "at": "yesterday"},
            {"plate": "x" * 40, "country": "BE"},
        ],
    )
    def test_validation_errors(self, client: TestClient, params: dict[str, str]) -> None:
        response = client.get("/v1/vehicles", params=params, headers=HEADERS, auth=SIGNED)
        assert response.status_code == 422


class TestExemptions:
    def test_list(self, client: TestClient) -> None:
        status, body = get(client, "/v1/exemptions", plate="1ABC123", country="BE")
        assert status == 200
        assert isinstance(body, list)
        assert [Exemption.model_validate(e) for e in body] == EXEMPTIONS

    def test_empty(self, client: TestClient) -> None:
        assert get(client, "/v1/exemptions", plate="9-ZZZ-999", country="BE") == (200, [])


class TestAuthAndFaults:
    @pytest.mark.parametrize("signer", [None, FidusSigner(LEZ.name, "test", "wrong-secret")])
    def test_credential_required(self, client: TestClient, signer: FidusSigner | None) -> None:
        for path in ("/v1/vehicles", "/v1/exemptions"):
            response = client.get(
                path, params={"plate": "1-ABC-123", "country": "BE"}, headers=HEADERS, auth=signer
            )
            assert response.status_code == 401

    def test_no_authority_configured(self) -> None:
        with pytest.raises(ValueError, match="no authority"):
            create_app(VEHICLES, EXEMPTIONS, authorities={})

    def test_failure_rate_one(self) -> None:
        app = create_app(VEHICLES, EXEMPTIONS, authorities=AUTHORITIES, failure_rate=1.0)
        with TestClient(app) as c:
            assert get(c, "/v1/vehicles", plate="1-ABC-123", country="BE")[0] == 503
            assert c.get("/health").status_code == 200

    def test_failure_rate_is_seeded(self) -> None:
        def statuses() -> list[int]:
            app = create_app(
                VEHICLES, EXEMPTIONS, authorities=AUTHORITIES, failure_rate=0.5, seed=7
            )
            with TestClient(app) as c:
                return [get(c, "/v1/exemptions", plate="X1", country="BE")[0] for _ in range(40)]

        first = statuses()
        assert first == statuses()
        assert set(first) == {200, 503}

    @pytest.mark.parametrize("kwargs", [{"failure_rate": 1.5}, {"latency_s": -1.0}])
    def test_bad_parameters(self, kwargs: dict[str, float]) -> None:
        with pytest.raises(ValueError):
            create_app(VEHICLES, EXEMPTIONS, authorities=AUTHORITIES, **kwargs)  # type: ignore[arg-type]
