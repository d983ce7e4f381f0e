"""The PostgreSQL server the launcher starts asks every connection for the stack's password (SCRAM), never trusts
one: the running stack's server, a data folder made by an earlier launcher with trust authentication, and one whose
password the stack's secrets no longer hold (`.run/` deleted, or POSTGRES_PASSWORD exported anew). And the secret
store that gives the sidecars the password gives out nothing else."""

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack.dapr import stack_secrets, stored_secrets
from devstack.layout import APPS, LOOPBACK, POSTGRES_PORT, Layout
from devstack.processes import ManagedProcess, run_checked
from devstack.stack import Stack, ports_in_use
from devstack.state_stores import POSTGRES_ACCOUNT, postgres_bin, postgres_data_dir, start_postgres

from tests.support.fulfillment import sidecar_headers

SPARE_PORT = 5490
"""A second server's, beside the stack's on 5432 (below the ephemeral range, like the conformance probe's ports)."""


def psql(
    layout: Layout, port: int, password: str | None, sql: str = "SELECT 'in';"
) -> subprocess.CompletedProcess[str]:
    """`sql` run by psql as `postgres` over TCP on loopback, with `password` or none at all."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    if password is not None:
        env["PGPASSWORD"] = password
    command = [
        str(postgres_bin(layout, "psql")), "-h", LOOPBACK, "-p", str(port), "-U", "postgres", "-d", "postgres",
        "-w", "-tA", "-c", sql,
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=30)


def assert_only_the_password_gets_in(layout: Layout, port: int, password: str) -> None:
    without = psql(layout, port, None)
    wrong = psql(layout, port, password + "-not")
    right = psql(layout, port, password)

    assert without.returncode != 0
    assert "no password supplied" in without.stderr
    assert wrong.returncode != 0
    assert "password authentication failed" in wrong.stderr
    assert right.returncode == 0, right.stderr
    assert right.stdout.strip() == "in"


def test_the_stacks_server_refuses_a_connection_without_the_stack_password(stack: Stack, layout: Layout) -> None:
    assert psql(layout, POSTGRES_PORT, None).returncode != 0
    assert_only_the_password_gets_in(layout, POSTGRES_PORT, stored_secrets(layout)["POSTGRES_PASSWORD"])


@pytest.fixture
def spare_layout(tmp_path: Path) -> Iterator[Layout]:
    """A checkout of its own (its .run/, secrets and PostgreSQL data folder), its data folder removed afterwards."""
    (tmp_path / "tools").mkdir()
    shutil.copy(Layout.discover().root / "tools" / "versions.env", tmp_path / "tools" / "versions.env")
    spare = Layout(tmp_path)
    shutil.rmtree(postgres_data_dir(spare), ignore_errors=True)
    assert ports_in_use([SPARE_PORT]) == [], f"port {SPARE_PORT} is taken"
    try:
        yield spare
    finally:
        shutil.rmtree(postgres_data_dir(spare), ignore_errors=True)


def as_postgres_account() -> tuple[int | None, int | None]:
    """Who runs the server: the `postgres` account when root starts it, as the launcher does."""
    if os.geteuid() != 0:
        return None, None
    entry = pwd.getpwnam(POSTGRES_ACCOUNT)
    return entry.pw_uid, entry.pw_gid


def initialised_with_trust(layout: Layout) -> Path:
    """A data folder as the launcher made it before it had a password (`initdb -A trust`), with a table in it."""
    data = postgres_data_dir(layout)
    data.mkdir(mode=0o700)
    user, group = as_postgres_account()
    if user is not None and group is not None:
        os.chown(data, user, group)
    initdb = [str(postgres_bin(layout, "initdb")), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    run_checked("old-initdb", initdb, log_dir=layout.logs_dir, cwd=data, user=user, group=group)
    single = [str(postgres_bin(layout, "postgres")), "--single", "-D", str(data), "postgres"]
    completed = subprocess.run(
        single, input=b"CREATE TABLE kept_from_before (id int);\n", cwd=data, user=user, group=group,
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return data


def started(layout: Layout) -> ManagedProcess:
    return start_postgres(layout, port=SPARE_PORT)


def test_a_data_folder_made_with_trust_asks_for_the_password_from_its_next_start_and_keeps_its_data(
    spare_layout: Layout,
) -> None:
    initialised_with_trust(spare_layout)

    server = started(spare_layout)
    try:
        password = stack_secrets(spare_layout)["POSTGRES_PASSWORD"]
        assert_only_the_password_gets_in(spare_layout, SPARE_PORT, password)
        kept = psql(spare_layout, SPARE_PORT, password, "SELECT count(*) FROM kept_from_before;")
        assert kept.returncode == 0, kept.stderr
    finally:
        server.stop()


def test_a_new_stack_password_replaces_the_one_the_data_folder_had(
    spare_layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRES_PASSWORD", "the-first-password")
    started(spare_layout).stop()
    monkeypatch.setenv("POSTGRES_PASSWORD", "the-second-password")

    server = started(spare_layout)
    try:
        assert_only_the_password_gets_in(spare_layout, SPARE_PORT, "the-second-password")
        assert psql(spare_layout, SPARE_PORT, "the-first-password").returncode != 0
    finally:
        server.stop()


def test_a_fresh_data_folder_asks_for_the_password_that_the_secrets_file_holds(spare_layout: Layout) -> None:
    server = started(spare_layout)
    try:
        assert_only_the_password_gets_in(spare_layout, SPARE_PORT, stored_secrets(spare_layout)["POSTGRES_PASSWORD"])
        assert (spare_layout.secrets_file.stat().st_mode & 0o777) == 0o600
    finally:
        server.stop()


def test_the_secret_store_hands_out_the_postgresql_password_and_no_other_secret(stack: Stack) -> None:
    """secretstores.local.env serves the sidecar's environment over the Secrets API: its prefix keeps that to
    POSTGRES_* (the sidecars' environment holds CARRIER_WEBHOOK_SECRET too)."""
    answer = httpx.get(
        f"http://{LOOPBACK}:{APPS[0].dapr_http_port}/v1.0/secrets/postgres-secrets/bulk",
        headers=sidecar_headers(),
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    served = answer.json()
    assert served["PASSWORD"] == {"PASSWORD": stored_secrets(stack.layout)["POSTGRES_PASSWORD"]}
    assert {"CARRIER_WEBHOOK_SECRET", "PATH", "HOME"}.isdisjoint(served)
