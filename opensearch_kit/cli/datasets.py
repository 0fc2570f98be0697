"""`opensearch-kit datasets`: public BEIR-format data sets, from the mirror, the cache or the publisher."""

from __future__ import annotations

import json
from pathlib import Path

import click

from opensearch_kit.cli.common import json_option


def _echo(data: dict, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False) if as_json else text)


@click.group("datasets")
def datasets() -> None:
    """Public retrieval data sets in BEIR layout (a mirror directory in $OPENSEARCH_KIT_DATASETS is read first)."""


@datasets.command("get")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), help="Download here.")
@json_option
def datasets_get(name, directory, as_json) -> None:
    """Print the BEIR folder of data set NAME, downloading and checking it once (see `datasets list`)."""
    from opensearch_kit.datasets import get

    path = get(name, directory=directory, progress=not as_json)
    _echo({"name": name, "path": str(path)}, as_json, str(path))


@datasets.command("list")
@json_option
def datasets_list(as_json) -> None:
    """The data sets `datasets get` knows."""
    from opensearch_kit.datasets import DATASETS

    rows = {name: source.description for name, source in DATASETS.items()}
    _echo(rows, as_json, "\n".join(f"{name:22} {text}" for name, text in rows.items()))
