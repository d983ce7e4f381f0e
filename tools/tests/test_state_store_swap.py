"""Swapping the state store is a change of YAML only: the generated run file differs from dapr.yaml in its
resources folder alone, and that folder holds the alternate's store files in place of the SQLite ones, with the
components they need (PostgreSQL: the secret store of its password) beside them."""

import shutil
from pathlib import Path

import pytest
import yaml
from devstack.layout import Layout
from devstack.state_stores import STATE_STORE_KINDS, StateStoreKind, component_files, run_file

COMPONENT_TYPES: dict[StateStoreKind, str] = {"postgres": "state.postgresql", "redis": "state.redis"}
ADDED_COMPONENTS: dict[StateStoreKind, dict[str, str]] = {
    "postgres": {"postgres-secrets": "secretstores.local.env"},
    "redis": {},
}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """A copy of the repository's run file, components and pins, so generated files land in a temporary .run/."""
    root = Layout.discover().root
    shutil.copy(root / "dapr.yaml", tmp_path / "dapr.yaml")
    shutil.copytree(root / "components", tmp_path / "components")
    (tmp_path / "tools").mkdir()
    shutil.copy(root / "tools" / "versions.env", tmp_path / "tools" / "versions.env")
    return Layout(tmp_path)


def component_types(folder: Path) -> dict[str, str]:
    """name -> type of every component in `folder`."""
    documents = [yaml.safe_load(path.read_text()) for path in sorted(folder.glob("*.yaml"))]
    return {doc["metadata"]["name"]: doc["spec"]["type"] for doc in documents if doc["kind"] == "Component"}


def test_the_default_store_runs_dapr_yaml_itself(layout: Layout) -> None:
    assert run_file(layout, "sqlite") == layout.root / "dapr.yaml"


@pytest.mark.parametrize("kind", list(COMPONENT_TYPES))
def test_an_alternate_store_changes_the_two_state_stores_and_adds_only_what_they_need(
    layout: Layout, kind: StateStoreKind
) -> None:
    original = yaml.safe_load((layout.root / "dapr.yaml").read_text())

    generated = yaml.safe_load(run_file(layout, kind).read_text())

    [resources] = generated["common"]["resourcesPaths"]
    swapped, default = component_types(Path(resources)), component_types(layout.root / "components")
    changed = {name: type_ for name, type_ in swapped.items() if name in default and default[name] != type_}
    added = {name: type_ for name, type_ in swapped.items() if name not in default}
    assert default.keys() <= swapped.keys()
    assert changed == {"order-store": COMPONENT_TYPES[kind], "fulfillment-store": COMPONENT_TYPES[kind]}
    assert added == ADDED_COMPONENTS[kind]
    assert Path(generated["common"]["configFilePath"]) == layout.root / original["common"]["configFilePath"]
    for app, before in zip(generated["apps"], original["apps"], strict=True):
        assert app == {**before, "appDirPath": str(layout.root / before["appDirPath"])}


@pytest.mark.parametrize("kind", STATE_STORE_KINDS)
def test_every_store_ships_both_stores_under_the_names_the_apps_use(layout: Layout, kind: StateStoreKind) -> None:
    names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in component_files(layout, kind)]

    assert names == ["order-store", "fulfillment-store"]
