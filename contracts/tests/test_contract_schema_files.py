"""The checked-in JSON Schemas (contracts/schemas/) are exactly what the event models generate now."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from order_contracts.events import EVENT_MODELS
from order_contracts.schema_files import (
    ENVELOPE_NAME,
    JSON_SCHEMA_DIALECT,
    SCHEMAS_DIR,
    differing_files,
    main,
    schema_filename,
    schema_files,
    write_files,
)

REGENERATE = "run `uv run python -m order_contracts.schema_files --write` and commit the result"
GENERATED = schema_files()


def test_the_generator_writes_into_contracts_schemas() -> None:
    assert Path(__file__).resolve().parents[1] / "schemas" == SCHEMAS_DIR


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_checked_in_schema_matches_its_model(name: str) -> None:
    path = SCHEMAS_DIR / name
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    assert path.read_text("utf-8") == GENERATED[name], f"{path} disagrees with its pydantic model: {REGENERATE}"


def test_every_event_model_has_a_schema_file_and_no_file_is_orphaned() -> None:
    expected = {schema_filename(model.event_type) for model in EVENT_MODELS} | {schema_filename(ENVELOPE_NAME)}
    assert set(GENERATED) == expected
    present = {path.name for path in SCHEMAS_DIR.glob("*.schema.json")}
    assert present - expected == set(), f"schema files no model generates: {REGENERATE}"
    assert expected - present == set(), f"missing schema files: {REGENERATE}"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_schema_is_a_valid_draft_2020_12_schema_titled_by_its_type(name: str) -> None:
    schema = json.loads(GENERATED[name])
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"].startswith("urn:")
    is_envelope = name == schema_filename(ENVELOPE_NAME)
    assert schema["title"] == ("CloudEvent" if is_envelope else name.removesuffix(".schema.json"))


def test_check_passes_on_the_checked_in_files() -> None:
    assert main(["--check"]) == 0, REGENERATE


def test_check_lists_stale_missing_and_orphan_files_and_write_repairs_them(tmp_path: Path) -> None:
    write_files(tmp_path)
    assert differing_files(tmp_path) == []
    stale, missing = sorted(GENERATED)[:2]
    (tmp_path / stale).write_text("{}\n", encoding="utf-8")
    (tmp_path / missing).unlink()
    (tmp_path / "order.renamed.v1.schema.json").write_text("{}\n", encoding="utf-8")

    assert differing_files(tmp_path) == sorted([stale, missing, "order.renamed.v1.schema.json"])
    write_files(tmp_path)
    assert differing_files(tmp_path) == []
