"""Belgian structured payment references: check digits, formats, parsing a payment file."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fines.errors import PaymentReferenceError
from fines.payments import read_payments
from fines.structured_ref import (
    MAX_NUMBER,
    check_digits,
    format_reference,
    is_valid,
    parse_reference,
    reference_digits,
)


class TestCheckDigits:
    def test_the_documented_example(self) -> None:
        # 1234567890 mod 97 = 2: +++123/4567/89002+++
        assert reference_digits(1234567890) == "123456789002"
        assert format_reference(reference_digits(1234567890)) == "+++123/4567/89002+++"

    def test_a_remainder_of_zero_is_written_97(self) -> None:
        assert check_digits(97) == 97
        assert check_digits(97 * 1_000_000) == 97
        assert reference_digits(194) == "000000019497"

    @pytest.mark.parametrize("number", [0, -1, MAX_NUMBER + 1])
    def test_out_of_range_numbers_are_refused(self, number: int) -> None:
        with pytest.raises(ValueError, match="payment reference"):
            check_digits(number)

    @given(st.integers(min_value=1, max_value=MAX_NUMBER))
    def test_every_reference_made_parses_back(self, number: int) -> None:
        digits = reference_digits(number)
        assert len(digits) == 12
        assert 1 <= int(digits[10:]) <= 97
        assert parse_reference(format_reference(digits)) == digits

    @given(st.integers(min_value=1, max_value=MAX_NUMBER), st.integers(0, 11), st.integers(1, 9))
    def test_one_wrong_digit_is_caught(self, number: int, where: int, delta: int) -> None:
        digits = reference_digits(number)
        wrong = digits[:where] + str((int(digits[where]) + delta) % 10) + digits[where + 1 :]
        assert not is_valid(wrong)

    def test_distinct_numbers_make_distinct_references(self) -> None:
        refs = {reference_digits(n) for n in range(1, 20_000)}
        assert len(refs) == 19_999


class TestParse:
    @pytest.mark.parametrize(
        "text", ["+++123/4567/89002+++", "***123/4567/89002***", "123456789002", "123 4567 89002"]
    )
    def test_usual_spellings(self, text: str) -> None:
        assert parse_reference(text) == "123456789002"

    @pytest.mark.parametrize("text", ["+++123/4567/89003+++", "12345678900", "000000000097", "x"])
    def test_invalid_references(self, text: str) -> None:
        with pytest.raises(PaymentReferenceError):
            parse_reference(text)


class TestReadPayments:
    def test_references_and_amounts_from_csv_and_statement_lines(self) -> None:
        lines = [
            "reference,amount,date",
            "+++123/4567/89002+++,350.00,2026-12-01",
            "2026-12-01 VIREMENT ***000/0000/19497*** 150,00 EUR",
            "no reference on this line 42",
            "123456789002",
        ]
        got = read_payments(lines)
        assert [(p.line, p.reference, p.amount_eur) for p in got] == [
            (2, "123456789002", Decimal("350.00")),
            (3, "000000019497", Decimal("150.00")),
            (5, "123456789002", None),
        ]
