"""Typed fields: keys of each source line indexed as top-level fields of a given type (for filters, ranges and
sorting), checked line by line at ingest so a value that does not fit rejects only its line, with the reason."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from opensearch_kit.errors import KitError
from opensearch_kit.index.meta import FIELDS

TYPES = ("keyword", "text", "integer", "long", "float", "double", "boolean", "date")
_NAME = re.compile(r"^[A-Za-z_][\w\-]*$")
_BOUNDS = {"integer": 2**31, "long": 2**63}
_YEAR_MONTH = re.compile(r"^\d{4}(-\d{2})?$")


def parse_fields(specs: Iterable[str]) -> dict[str, str]:
    """`NAME:TYPE` specs (`lang:keyword`, `year:integer`) as {name: type}, checked."""
    fields: dict[str, str] = {}
    for spec in specs:
        name, _, kind = spec.partition(":")
        name, kind = name.strip(), kind.strip().lower()
        if not kind:
            raise KitError(f"--field {spec!r} has no type", f"write NAME:TYPE, TYPE one of {', '.join(TYPES)}")
        if name in fields:
            raise KitError(f"--field {name} is given twice", "give each field once")
        fields[name] = kind
    check_fields(fields)
    return fields


def check_fields(fields: Mapping[str, str]) -> None:
    """Each name a plain field name not used by the index itself, each type one of TYPES."""
    reserved = {v for v in vars(FIELDS).values() if v}
    for name, kind in fields.items():
        if kind not in TYPES:
            raise KitError(f"field {name}: unknown type {kind!r}", f"use one of {', '.join(TYPES)}")
        if not _NAME.match(name) or name in reserved:
            raise KitError(
                f"field name {name!r} is not allowed",
                f"use letters, digits, _ and -, not one of the index's own fields ({', '.join(sorted(reserved))})",
            )


def field_mapping(kind: str, analyzer: str) -> dict:
    """The mapping of a typed field (text fields use the index's analyzer)."""
    return {"type": "text", "analyzer": analyzer} if kind == "text" else {"type": kind}


def convert(value: Any, kind: str) -> Any:
    """`value` as the field type holds it (a list: each element), or ValueError with the reason it does not fit."""
    if isinstance(value, list):
        return [convert(v, kind) for v in value]
    if value is None or isinstance(value, dict):
        raise ValueError(f"{type(value).__name__} is not a {kind} value")
    return _CONVERT[kind](value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"{value!r} is not a string")


def _whole(kind: str):
    def check(value: Any) -> int:
        number = value
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError(f"{value!r} is not a whole number") from None
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"{value!r} is not a whole number")
        if not -_BOUNDS[kind] <= number < _BOUNDS[kind]:
            raise ValueError(f"{value!r} is out of the {kind} range")
        return number

    return check


def _real(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    raise ValueError(f"{value!r} is not true or false")


def _date(value: Any) -> str | int:
    """An ISO 8601 date or date-time (strict_date_optional_time), or epoch milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _YEAR_MONTH.match(text):
            return text
        try:
            (datetime if "T" in text else date).fromisoformat(text)
            return text
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO 8601 date (e.g. 2024-05-31 or 2024-05-31T12:00:00Z)")


_CONVERT = {
    "keyword": _text,
    "text": _text,
    "integer": _whole("integer"),
    "long": _whole("long"),
    "float": _real,
    "double": _real,
    "boolean": _boolean,
    "date": _date,
}
