"""The PostgreSQL alternate's password: generated like the stack's other secrets, never in a committed file, and
handed to the two state stores by Dapr itself (a secret store reading the sidecar's environment, loaded only with
those stores). The server asking for it is tested on a real one in tests/alternates/test_postgres_password.py."""

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from devstack.dapr import STACK_SECRETS, stack_secrets, stored_secrets
from devstack.layout import Layout
from devstack.processes import StartupError
from devstack.state_stores import component_files, postgres_password, supporting_files

ROOT = Layout.discover().root


def document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def metadata(component: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in component["spec"]["metadata"]}


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    """A checkout of its own, so its .run/secrets.env is a temporary one; no stack secret exported."""
    for name in STACK_SECRETS:
        monkeypatch.delenv(name, raising=False)
    return Layout(tmp_path)


@pytest.mark.parametrize("path", component_files(Layout.discover(), "postgres"), ids=lambda path: path.name)
def test_each_postgresql_store_takes_its_password_from_the_secret_store_that_ships_beside_it(path: Path) -> None:
    store = document(path)
    fields = metadata(store)
    [secret_store_file] = supporting_files(Layout.discover(), "postgres")
    secret_store = document(secret_store_file)
    reference = fields["password"]["secretKeyRef"]

    assert "password" not in fields["connectionString"]["value"]
    assert "value" not in fields["password"]
    assert store["auth"]["secretStore"] == secret_store["metadata"]["name"]
    assert secret_store["spec"]["type"] == "secretstores.local.env"
    assert set(store["scopes"]) <= set(secret_store["scopes"])
    # secretstores.local.env reads the variable <prefix><secret name> and answers it under the secret's name.
    assert reference["key"] == reference["name"]
    assert metadata(secret_store)["prefix"]["value"] + reference["name"] == "POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD" in STACK_SECRETS


def test_the_secret_store_is_scoped_to_the_two_apps_with_stores_and_hands_out_postgres_variables_only() -> None:
    [path] = supporting_files(Layout.discover(), "postgres")
    secret_store = document(path)

    assert sorted(secret_store["scopes"]) == ["fulfillment-service", "order-service"]
    assert metadata(secret_store)["prefix"]["value"] == "POSTGRES_"


def test_no_secret_store_is_loaded_with_the_default_components() -> None:
    defaults = [document(path) for path in sorted((ROOT / "components").glob("*.yaml"))]

    assert [item for item in defaults if item["spec"].get("type", "").startswith("secretstores.")] == []
    assert supporting_files(Layout.discover(), "sqlite") == []


def test_the_password_is_generated_once_into_the_owner_only_secrets_file_and_kept(layout: Layout) -> None:
    first = postgres_password(layout)
    again = postgres_password(layout)

    assert first == again == stored_secrets(layout)["POSTGRES_PASSWORD"]
    assert len(first) >= 32
    assert stat.S_IMODE(layout.secrets_file.stat().st_mode) == 0o600


def test_an_exported_password_wins_over_the_stored_one(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    postgres_password(layout)
    monkeypatch.setenv("POSTGRES_PASSWORD", "exported-one")

    assert postgres_password(layout) == "exported-one"
    assert stored_secrets(layout)["POSTGRES_PASSWORD"] == "exported-one"


def test_a_secrets_file_from_before_the_password_keeps_its_tokens_and_gains_the_password(layout: Layout) -> None:
    layout.run_dir.mkdir()
    layout.secrets_file.write_text("DAPR_API_TOKEN=a\nAPP_API_TOKEN=b\nCARRIER_WEBHOOK_SECRET=c\n")
    os.chmod(layout.secrets_file, 0o600)

    values = stack_secrets(layout)

    assert {name: values[name] for name in ("DAPR_API_TOKEN", "APP_API_TOKEN", "CARRIER_WEBHOOK_SECRET")} == {
        "DAPR_API_TOKEN": "a",
        "APP_API_TOKEN": "b",
        "CARRIER_WEBHOOK_SECRET": "c",
    }
    assert stored_secrets(layout)["POSTGRES_PASSWORD"] == values["POSTGRES_PASSWORD"] != ""


@pytest.mark.parametrize("password", ["with space", "quo'te", "back\\slash"])
def test_a_password_the_connection_string_would_misread_is_refused(
    layout: Layout, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", password)

    with pytest.raises(StartupError, match="POSTGRES_PASSWORD"):
        postgres_password(layout)
