"""OData query options as eAccounting's API v2 takes them: $filter, $orderby and $select over JSON objects.

Pure functions over plain dicts. Each resource declares its fields with a kind (from the Swagger definition), so a
literal is checked against the field it is compared with when the query is parsed, as the real server does, and a
date-time field is compared as an instant whatever way the literal or the stored value is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Literal, cast

Kind = Literal["string", "integer", "number", "boolean", "datetime", "guid", "object"]
Op = Literal["eq", "ne", "gt", "ge", "lt", "le"]
OPS: frozenset[str] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


class ODataError(ValueError):
    """A query option that cannot be parsed or does not fit the resource (the API's ErrorCode 6000)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """`Field op literal`, the literal already converted to the field's kind (None for null)."""

    field: str
    op: Op
    value: Any
    kind: Kind


@dataclass(frozen=True, slots=True)
class Conjunction:
    """Every part holds."""

    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Disjunction:
    """At least one part holds."""

    parts: tuple[Expr, ...]


Expr = Comparison | Conjunction | Disjunction


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One `Field [asc|desc]` of $orderby."""

    field: str
    descending: bool
    kind: Kind


@dataclass(frozen=True, slots=True)
class Query:
    """The parsed $filter, $orderby and $select of one request."""

    filter: Expr | None = None
    orderby: tuple[OrderKey, ...] = ()
    select: tuple[str, ...] | None = None


# ---------------------------------------------------------------- date-times

_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)


@lru_cache(maxsize=65536)
def parse_datetime(text: str) -> datetime:
    """An ISO date or date-time as an aware UTC instant; without an offset it is taken as UTC."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    # .NET writes seven fractional digits (ticks); Python keeps six.
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    value = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=tz
    )
    return value.astimezone(UTC)


def comparable(kind: Kind, raw: Any) -> Any:
    """A stored JSON value in the form a literal of `kind` is compared with (None stays None)."""
    if raw is None:
        return None
    if kind == "datetime":
        return parse_datetime(raw) if isinstance(raw, str) else raw
    if kind == "guid":
        return str(raw).lower()
    return raw


# ---------------------------------------------------------------- $filter

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w.:-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\w.:-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            if text[at] == "'":
                raise ODataError(f"$filter: unterminated string starting at position {at}")
            raise ODataError(f"$filter: unexpected {text[at]!r} at position {at}")
        kind = match.lastgroup or ""
        if kind != "ws":
            out.append(_Token(kind, match.group(), at))
        at = match.end()
    return out


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, Kind]) -> None:
        self.text = text
        self.fields = fields
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, what: str) -> _Token:
        token = self.peek()
        if token is None:
            raise ODataError(f"$filter: expected {what} at the end of {self.text!r}")
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() == word:
            self.at += 1
            return True
        return False

    def parse(self) -> Expr:
        if not self.tokens:
            raise ODataError("$filter: empty expression")
        expr = self.disjunction()
        token = self.peek()
        if token is not None:
            raise ODataError(f"$filter: unexpected {token.text!r} at position {token.at}; expected 'and' or 'or'")
        return expr

    def disjunction(self) -> Expr:
        parts = [self.conjunction()]
        while self.keyword("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Disjunction(tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.term()]
        while self.keyword("and"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Conjunction(tuple(parts))

    def term(self) -> Expr:
        token = self.take("a field name or '('")
        if token.kind == "lparen":
            inner = self.disjunction()
            closing = self.take("')'")
            if closing.kind != "rparen":
                raise ODataError(f"$filter: expected ')' at position {closing.at}, found {closing.text!r}")
            return inner
        if token.kind != "name":
            raise ODataError(f"$filter: expected a field name at position {token.at}, found {token.text!r}")
        kind = field_kind(self.fields, token.text, "$filter")
        if kind == "object":
            raise ODataError(f"$filter: {token.text} is a nested object or list and cannot be compared")
        op_token = self.take("an operator (eq, ne, gt, ge, lt, le)")
        op = op_token.text.lower()
        if op_token.kind != "name" or op not in OPS:
            raise ODataError(
                f"$filter: expected an operator (eq, ne, gt, ge, lt, le) at position {op_token.at}, "
                f"found {op_token.text!r}"
            )
        value = self.literal(token.text, kind)
        return Comparison(token.text, cast(Op, op), value, kind)

    def literal(self, field: str, kind: Kind) -> Any:
        token = self.take(f"a value to compare {field} with")
        text = token.text
        lowered = text.lower()
        if token.kind == "name" and lowered == "null":
            return None
        # OData v3 wrote typed literals: datetime'2026-01-01T00:00:00', guid'…'.
        if token.kind == "name" and lowered in {"datetime", "datetimeoffset", "guid"}:
            quoted = self.peek()
            if quoted is not None and quoted.kind == "string" and quoted.at == token.at + len(text):
                self.at += 1
                token = _Token(lowered if lowered == "guid" else "datetime", _unquote(quoted.text), token.at)
                text = token.text
        mismatch = ODataError(f"$filter: {field} is a {_KIND_WORDS[kind]}; {text} at position {token.at} is not")
        if kind == "datetime":
            if token.kind in {"datetime", "string"}:
                try:
                    return parse_datetime(_unquote(text) if token.kind == "string" else text)
                except ValueError:
                    raise mismatch from None
            raise mismatch
        if kind == "guid":
            value = _unquote(text) if token.kind == "string" else text
            if token.kind in {"guid", "string"} and re.fullmatch(
                r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}", value
            ):
                return value.lower()
            raise mismatch
        if kind == "string":
            if token.kind == "string":
                return _unquote(text)
            raise mismatch
        if kind in {"integer", "number"}:
            if token.kind == "number":
                return int(text) if re.fullmatch(r"-?\d+", text) else Decimal(text)
            raise mismatch
        if kind == "boolean" and token.kind == "name" and lowered in {"true", "false"}:
            return lowered == "true"
        raise mismatch


_KIND_WORDS: dict[str, str] = {
    "string": "string",
    "integer": "whole number",
    "number": "number",
    "boolean": "boolean (true or false)",
    "datetime": "date-time",
    "guid": "GUID",
    "object": "nested object",
}


def _unquote(text: str) -> str:
    return text[1:-1].replace("''", "'")


def field_kind(fields: Mapping[str, Kind], name: str, option: str) -> Kind:
    """The kind of a field, or ODataError naming the unknown field (and its right spelling if only the case differs)."""
    kind = fields.get(name)
    if kind is not None:
        return kind
    near = [field for field in fields if field.lower() == name.lower()]
    hint = f" (did you mean {near[0]}?)" if near else f"; known fields: {', '.join(fields)}"
    raise ODataError(f"{option}: unknown field {name!r}{hint}")


def parse_filter(text: str, fields: Mapping[str, Kind]) -> Expr:
    """Parse `$filter` (eq ne gt ge lt le, and/or, parentheses) against the resource's fields."""
    return _Parser(text, fields).parse()


def parse_orderby(text: str, fields: Mapping[str, Kind]) -> tuple[OrderKey, ...]:
    """Parse `$orderby=Field [asc|desc], Field2 …`."""
    keys: list[OrderKey] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise ODataError(f"$orderby: expected 'Field [asc|desc]', found {part.strip()!r}")
        kind = field_kind(fields, words[0], "$orderby")
        if kind == "object":
            raise ODataError(f"$orderby: {words[0]} is a nested object or list and cannot be ordered by")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in {"asc", "desc"}:
            raise ODataError(f"$orderby: expected asc or desc after {words[0]}, found {words[1]!r}")
        keys.append(OrderKey(words[0], direction == "desc", kind))
    return tuple(keys)


def parse_select(text: str, fields: Mapping[str, Kind]) -> tuple[str, ...]:
    """Parse `$select=A,B` into the field names, in the order given, without repeats."""
    names: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if not name:
            raise ODataError(f"$select: empty field name in {text!r}")
        field_kind(fields, name, "$select")
        if name not in names:
            names.append(name)
    return tuple(names)


def parse_query(params: Mapping[str, str], fields: Mapping[str, Kind]) -> Query:
    """$filter, $orderby and $select of a request's query string (absent or empty options are ignored)."""
    text = params.get("$filter", "").strip()
    order = params.get("$orderby", "").strip()
    select = params.get("$select", "").strip()
    return Query(
        filter=parse_filter(text, fields) if text else None,
        orderby=parse_orderby(order, fields) if order else (),
        select=parse_select(select, fields) if select else None,
    )


# ---------------------------------------------------------------- evaluation


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    # OData: an ordering comparison with null is false.
    if left is None or right is None:
        return False
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    return bool(left <= right)


def matches(expr: Expr, item: Mapping[str, Any]) -> bool:
    """Whether one object satisfies the filter (a missing field counts as null)."""
    if isinstance(expr, Comparison):
        return _compare(expr.op, comparable(expr.kind, item.get(expr.field)), expr.value)
    if isinstance(expr, Conjunction):
        return all(matches(part, item) for part in expr.parts)
    return any(matches(part, item) for part in expr.parts)


def conjuncts(expr: Expr | None) -> list[Comparison] | None:
    """The comparisons of a filter made only of `and`s (empty for no filter), or None when it has an `or`."""
    if expr is None:
        return []
    if isinstance(expr, Comparison):
        return [expr]
    if isinstance(expr, Disjunction):
        return None
    out: list[Comparison] = []
    for part in expr.parts:
        inner = conjuncts(part)
        if inner is None:
            return None
        out.extend(inner)
    return out


def sort_key(key: OrderKey, item: Mapping[str, Any]) -> tuple[int, Any]:
    """The value one $orderby key sorts an object by; nulls sort first ascending, as OData says."""
    value = comparable(key.kind, item.get(key.field))
    return (0, 0) if value is None else (1, value)


def order(items: list[dict[str, Any]], keys: Sequence[OrderKey]) -> list[dict[str, Any]]:
    """Items sorted by the $orderby keys; stable, so ties keep their original order."""
    out = list(items)
    for key in reversed(keys):
        out.sort(key=partial(sort_key, key), reverse=key.descending)
    return out


def apply(query: Query, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Filter then order (no $select, no paging: the API pages the result first and projects the page)."""
    expr = query.filter
    kept = [item for item in items if matches(expr, item)] if expr is not None else list(items)
    return order(kept, query.orderby) if query.orderby else kept


def project(items: Iterable[Mapping[str, Any]], select: Sequence[str] | None) -> list[dict[str, Any]]:
    """Only the selected fields of each object (every field when select is None; absent fields stay absent)."""
    if select is None:
        return [dict(item) for item in items]
    return [{name: item[name] for name in select if name in item} for item in items]
