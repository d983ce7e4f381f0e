"""The JSON Schema files of the events, generated from the pydantic models and checked in under contracts/schemas/.

One file per event type (`<type>.schema.json`, the CloudEvent's `data`) and one for the CloudEvent envelope. The
schemas are pydantic's serialization-mode schemas: they describe the JSON a writer emits, which is what a reader
receives. Regenerate with `uv run python -m order_contracts.schema_files --write`; `--check` exits 1 and lists the
files that differ.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from order_contracts.cloudevents import CloudEvent
from order_contracts.events import EVENT_MODELS

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
"""contracts/schemas/ in the source tree (the generator is a development tool: it works from a workspace checkout)."""

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_NAME = "cloudevent"
SCHEMA_SUFFIX = ".schema.json"


def schema_filename(name: str) -> str:
    """`order.created.v1` -> `order.created.v1.schema.json`."""
    return f"{name}{SCHEMA_SUFFIX}"


def _schema_text(model: type[BaseModel], *, name: str, title: str) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema |= {"$schema": JSON_SCHEMA_DIALECT, "$id": f"urn:order-platform:schemas:{name}", "title": title}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """Every schema file as the models define it now: {file name: JSON text}."""
    files = {
        schema_filename(model.event_type): _schema_text(model, name=model.event_type, title=model.event_type)
        for model in EVENT_MODELS
    }
    files[schema_filename(ENVELOPE_NAME)] = _schema_text(CloudEvent, name=ENVELOPE_NAME, title="CloudEvent")
    return files


def differing_files(directory: Path = SCHEMAS_DIR) -> list[str]:
    """The file names in `directory` that are stale, missing or no longer generated (orphans)."""
    expected = schema_files()
    present = {path.name for path in directory.glob(f"*{SCHEMA_SUFFIX}")}
    stale = [
        name for name, text in expected.items() if name in present and (directory / name).read_text("utf-8") != text
    ]
    return sorted([*stale, *(set(expected) - present), *(present - set(expected))])


def write_files(directory: Path = SCHEMAS_DIR) -> None:
    """Write every schema file and delete orphans (schema files no model generates any more)."""
    directory.mkdir(parents=True, exist_ok=True)
    expected = schema_files()
    for path in directory.glob(f"*{SCHEMA_SUFFIX}"):
        if path.name not in expected:
            path.unlink()
    for name, text in expected.items():
        (directory / name).write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m order_contracts.schema_files", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"regenerate the schema files in {SCHEMAS_DIR}")
    mode.add_argument("--check", action="store_true", help="exit 1 and list the files that differ")
    args = parser.parse_args(argv)
    if args.write:
        write_files()
        return 0
    differing = differing_files()
    for name in differing:
        print(f"differs: {SCHEMAS_DIR / name}", file=sys.stderr)
    if differing:
        print("run: uv run python -m order_contracts.schema_files --write", file=sys.stderr)
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
