"""Reading the PostgreSQL alternate's tables directly, to see that the system's state really is there."""

import os
import subprocess

from devstack.dapr import stored_secrets
from devstack.layout import LOOPBACK, POSTGRES_PORT, Layout
from devstack.state_stores import postgres_bin


def is_row(layout: Layout, table: str, key: str) -> bool:
    """Whether `key` (Dapr's `<app id>||<key>`) is a row of `table`, asked of PostgreSQL itself with psql (the
    values go in as psql variables, quoted by psql), with the stack's password (`.run/secrets.env`)."""
    password = stored_secrets(layout).get("POSTGRES_PASSWORD")
    assert password, "POSTGRES_PASSWORD not in the stack's secrets file (the launcher writes it)"
    psql = [
        str(postgres_bin(layout, "psql")),
        "-h", LOOPBACK, "-p", str(POSTGRES_PORT), "-U", "postgres", "-w",
        "-v", f"table={table}", "-v", f"key={key}", "-tA", "-f", "-",
    ]  # fmt: skip
    query = "SELECT count(*) FROM :\"table\" WHERE key = :'key';"
    env = {**os.environ, "PGPASSWORD": password}  # an environment only its owner can read, never an argument
    return subprocess.run(psql, input=query, env=env, check=True, capture_output=True, text=True).stdout.strip() == "1"
