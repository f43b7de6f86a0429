"""The OData engine behind the eAccounting simulator's lists: $filter, $orderby and $select over plain dicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.simulators.odata import (
    Comparison,
    ODataError,
    Query,
    apply,
    conjuncts,
    matches,
    order,
    parse_datetime,
    parse_filter,
    parse_orderby,
    parse_query,
    parse_select,
    project,
)

FIELDS = {
    "Id": "guid",
    "Name": "string",
    "Number": "integer",
    "Balance": "number",
    "Active": "boolean",
    "ModifiedUtc": "datetime",
    "VoucherDate": "datetime",
    "Rows": "object",
}
ITEMS = [
    {
        "Id": "3FA85F64-5717-4562-B3FC-2C963F66AFA6",
        "Name": "Kari's bakeri",
        "Number": 1920,
        "Balance": 1500.5,
        "Active": True,
        "ModifiedUtc": "2026-01-01T12:00:00Z",
        "VoucherDate": "2026-01-01T00:00:00",
        "Rows": [],
    },
    {
        "Id": "00000000-0000-4000-8000-000000000002",
        "Name": "Bank",
        "Number": 3000,
        "Balance": -20,
        "Active": False,
        "ModifiedUtc": "2026-01-01T12:00:00.1234567Z",
        "VoucherDate": "2026-01-02T00:00:00",
        "Rows": [],
    },
    {
        "Id": "00000000-0000-4000-8000-000000000003",
        "Name": "Salg",
        "Number": 3000,
        "Balance": 0,
        "Active": True,
        "ModifiedUtc": "2026-01-02T00:00:00",
        "VoucherDate": "2026-01-02T00:00:00",
    },
    {"Id": "00000000-0000-4000-8000-000000000004", "Name": None, "Number": 1500, "Balance": 10, "Active": True},
]


def names(expression: str) -> list[str | None]:
    expr = parse_filter(expression, FIELDS)
    return [item["Name"] for item in ITEMS if matches(expr, item)]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("Number eq 3000", ["Bank", "Salg"]),
        ("Number ne 3000", ["Kari's bakeri", None]),
        ("Number gt 1920", ["Bank", "Salg"]),
        ("Number ge 1920", ["Kari's bakeri", "Bank", "Salg"]),
        ("Number lt 1920", [None]),
        ("Number le 1920", ["Kari's bakeri", None]),
        ("Balance gt 1500.25", ["Kari's bakeri"]),
        ("Balance lt -19.5", ["Bank"]),
        ("Name eq 'Kari''s bakeri'", ["Kari's bakeri"]),
        ("Name eq null", [None]),
        ("Name ne null", ["Kari's bakeri", "Bank", "Salg"]),
        ("Name gt 'Bank'", ["Kari's bakeri", "Salg"]),
        ("Active eq false", ["Bank"]),
        ("Active eq true AND Number EQ 3000", ["Salg"]),
        ("Number eq 1920 or Number eq 1500", ["Kari's bakeri", None]),
        ("(Number eq 1920 or Number eq 1500) and Active eq true", ["Kari's bakeri", None]),
        ("Active eq true and (Number eq 3000 or Balance gt 1000)", ["Kari's bakeri", "Salg"]),
        ("Id eq 3fa85f64-5717-4562-b3fc-2c963f66afa6", ["Kari's bakeri"]),
        ("Id eq '3FA85F64-5717-4562-B3FC-2C963F66AFA6'", ["Kari's bakeri"]),
    ],
)
def test_comparisons_and_connectives(expression, expected):
    assert names(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Bare and quoted, date only, with and without seconds, Z, fractions: all compared as instants.
        ("ModifiedUtc ge 2026-01-01T12:00:00Z", ["Kari's bakeri", "Bank", "Salg"]),
        ("ModifiedUtc gt 2026-01-01T12:00:00Z", ["Bank", "Salg"]),
        ("ModifiedUtc gt 2026-01-01T12:00:00", ["Bank", "Salg"]),
        ("ModifiedUtc gt '2026-01-01T12:00:00Z'", ["Bank", "Salg"]),
        ("ModifiedUtc gt 2026-01-01T12:00:00.1235Z", ["Salg"]),
        ("ModifiedUtc le 2026-01-01T12:00:00.123456", ["Kari's bakeri", "Bank"]),
        ("ModifiedUtc eq 2026-01-02", ["Salg"]),
        ("ModifiedUtc ge 2026-01-01T13:00", ["Salg"]),
        ("ModifiedUtc lt 2026-01-01T13:00:00+00:30", ["Kari's bakeri", "Bank"]),
        ("ModifiedUtc gt datetime'2026-01-01T12:00:00'", ["Bank", "Salg"]),
        ("VoucherDate ge 2026-01-02 and ModifiedUtc lt 2026-01-02", ["Bank"]),
        ("ModifiedUtc eq null", [None]),
    ],
)
def test_date_times_compare_as_instants(expression, expected):
    assert names(expression) == expected


def test_parse_datetime_reads_every_iso_form_as_utc():
    noon = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert parse_datetime("2026-01-01T12:00:00") == noon
    assert parse_datetime("2026-01-01T12:00:00Z") == noon
    assert parse_datetime("2026-01-01T13:00:00+01:00") == noon
    assert parse_datetime("2026-01-01T12:00") == noon
    assert parse_datetime("2026-01-01") == noon - timedelta(hours=12)
    assert parse_datetime("2026-01-01T12:00:00.1234567Z") == noon + timedelta(microseconds=123456)
    assert parse_datetime("2026-01-01T12:00:00.5").tzinfo == UTC
    assert parse_datetime("2026-01-01T12:00:00-02:00").utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="not a date-time"):
        parse_datetime("yesterday")


def test_literals_are_typed_by_the_field_they_are_compared_with():
    assert parse_filter("Balance eq 12.50", FIELDS) == Comparison("Balance", "eq", Decimal("12.50"), "number")
    assert parse_filter("Number eq 7", FIELDS) == Comparison("Number", "eq", 7, "integer")
    assert parse_filter("Active ne TRUE", FIELDS) == Comparison("Active", "ne", True, "boolean")
    assert parse_filter("VoucherDate ge 2026-01-01", FIELDS).value == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("Nmae eq 'x'", "unknown field 'Nmae'; known fields: Id, Name"),
        ("name eq 'x'", "did you mean Name?"),
        ("Name equals 'x'", "expected an operator"),
        ("Name eq", "expected a value to compare Name with"),
        ("Name eq 'open", "unterminated string starting at position 8"),
        ("Name eq 42", "Name is a string; 42 at position 8 is not"),
        ("Number eq 'x'", "Number is a whole number"),
        ("ModifiedUtc ge 'soon'", "ModifiedUtc is a date-time"),
        ("ModifiedUtc ge 20260101", "ModifiedUtc is a date-time"),
        ("Active eq 1", "Active is a boolean"),
        ("Id eq 'not-a-guid'", "Id is a GUID"),
        ("Rows eq null", "Rows is a nested object or list"),
        ("Name eq 'x' Number eq 1", "unexpected 'Number' at position 12"),
        ("(Name eq 'x'", "expected ')'"),
        ("Name eq 'x' and", "expected a field name or '('"),
        ("Number eq 1 # 2", "unexpected '#' at position 12"),
        ("   ", "empty expression"),
    ],
)
def test_bad_filters_say_what_is_wrong(expression, message):
    with pytest.raises(ODataError) as caught:
        parse_filter(expression, FIELDS)
    assert message in str(caught.value)
    assert str(caught.value).startswith("$filter: ")


def test_orderby_is_stable_multi_key_with_nulls_first():
    rows = [
        {"Name": "b", "Number": 2, "Tag": 1},
        {"Name": "a", "Number": 2, "Tag": 2},
        {"Name": None, "Number": 1, "Tag": 3},
        {"Name": "a", "Number": 1, "Tag": 4},
        {"Name": "a", "Number": 2, "Tag": 5},
    ]
    fields = {"Name": "string", "Number": "integer"}
    assert [row["Tag"] for row in order(rows, parse_orderby("Name", fields))] == [3, 2, 4, 5, 1]
    assert [row["Tag"] for row in order(rows, parse_orderby("Name desc, Number", fields))] == [1, 4, 2, 5, 3]
    assert [row["Tag"] for row in order(rows, parse_orderby("Number DESC", fields))] == [1, 2, 5, 3, 4]


def test_orderby_sorts_date_times_as_instants_and_keeps_ties_in_order():
    rows = [
        {"ModifiedUtc": "2026-01-01T12:00:00Z", "Tag": 1},
        {"ModifiedUtc": "2026-01-01T11:00:00-02:00", "Tag": 2},
        {"ModifiedUtc": "2026-01-01T12:00:00", "Tag": 3},
        {"ModifiedUtc": "2026-01-01T12:00:00.0000001Z", "Tag": 4},
        {"ModifiedUtc": "2026-01-01T12:00:00.000001Z", "Tag": 5},
    ]
    ordered = order(rows, parse_orderby("ModifiedUtc asc", FIELDS))
    assert [row["Tag"] for row in ordered] == [1, 3, 4, 5, 2]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nope", "$orderby: unknown field 'Nope'"),
        ("Name sideways", "expected asc or desc after Name"),
        ("Name asc extra", "expected 'Field [asc|desc]'"),
        ("Name,", "expected 'Field [asc|desc]', found ''"),
        ("Rows", "Rows is a nested object or list and cannot be ordered by"),
    ],
)
def test_bad_orderby(text, message):
    with pytest.raises(ODataError) as caught:
        parse_orderby(text, FIELDS)
    assert message in str(caught.value)


def test_select_keeps_only_the_named_fields():
    assert parse_select("Name, Number,Name", FIELDS) == ("Name", "Number")
    assert project(ITEMS[2:], ("Number", "ModifiedUtc")) == [
        {"Number": 3000, "ModifiedUtc": "2026-01-02T00:00:00"},
        {"Number": 1500},
    ]
    assert project(ITEMS[:1], None) == [ITEMS[0]]
    with pytest.raises(ODataError, match=r"\$select: unknown field 'Nope'"):
        parse_select("Name,Nope", FIELDS)
    with pytest.raises(ODataError, match="empty field name"):
        parse_select("Name,,Number", FIELDS)


def test_parse_query_reads_the_three_options_and_apply_filters_then_orders():
    query = parse_query(
        {"$filter": "Number eq 3000 or Number eq 1920", "$orderby": "Balance", "$select": "Name", "$page": "2"}, FIELDS
    )
    assert query.select == ("Name",)
    assert [item["Name"] for item in apply(query, ITEMS)] == ["Bank", "Salg", "Kari's bakeri"]
    assert parse_query({"$filter": " ", "$orderby": ""}, FIELDS) == Query()
    assert apply(Query(), ITEMS) == ITEMS


def test_conjuncts_flattens_ands_and_gives_up_on_or():
    flat = conjuncts(parse_filter("(Number eq 1 and Name eq 'a') and Active eq true", FIELDS))
    assert [c.field for c in flat or []] == ["Number", "Name", "Active"]
    assert conjuncts(parse_filter("Number eq 1 or Number eq 2", FIELDS)) is None
    assert conjuncts(None) == []
