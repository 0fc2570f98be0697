"""Load the JSON templates shipped in the package (`mappings/`, `pipelines/`) and fill their placeholders."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

from opensearch_kit.errors import KitError

PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
WHOLE = re.compile(r"^\{\{(\w+)\}\}$")
_DROP = object()


@cache
def load(name: str) -> Any:
    """The parsed template `name` (e.g. "mappings/index.json", "pipelines/search/rrf.json")."""
    path = files("opensearch_kit").joinpath("data", *name.split("/"))
    return json.loads(path.read_text(encoding="utf-8"))


def render(name: str, **values: Any) -> Any:
    """Template `name` with every placeholder filled from `values` (rules in mappings/README.md)."""
    out = _fill(load(name), values, name)
    return None if out is _DROP else out


def _fill(node: Any, values: dict[str, Any], name: str) -> Any:
    if isinstance(node, dict):
        if "_if" in node and _value(node["_if"], values, name) is None:
            return _DROP
        out = {}
        for key, child in node.items():
            if key == "_if":
                continue
            whole = WHOLE.match(key)
            if whole and _value(whole[1], values, name) is None:
                continue
            filled = _fill(child, values, name)
            if filled is not _DROP:
                out[_fill(key, values, name)] = filled
        return out
    if isinstance(node, list):
        return [f for f in (_fill(child, values, name) for child in node) if f is not _DROP]
    if isinstance(node, str):
        whole = WHOLE.match(node)
        if whole:
            value = _value(whole[1], values, name)
            return _DROP if value is None else value
        return PLACEHOLDER.sub(lambda m: str(_value(m[1], values, name, required=True)), node)
    return node


def _value(key: str, values: dict[str, Any], name: str, required: bool = False) -> Any:
    if key not in values or (required and values[key] is None):
        raise KitError(f"template {name} needs a value for {{{{{key}}}}}", "this is a bug in opensearch-kit: report it")
    return values[key]
