"""Reading the PostgreSQL alternate's tables directly, to see that the system's state really is there."""

import subprocess

from devstack.layout import LOOPBACK, POSTGRES_PORT, Layout
from devstack.state_stores import postgres_bin


def is_row(layout: Layout, table: str, key: str) -> bool:
    """Whether `key` (Dapr's `<app id>||<key>`) is a row of `table`, asked of PostgreSQL itself with psql (the
    values go in as psql variables, quoted by psql)."""
    psql = [
        str(postgres_bin(layout, "psql")),
        "-h", LOOPBACK, "-p", str(POSTGRES_PORT), "-U", "postgres",
        "-v", f"table={table}", "-v", f"key={key}", "-tA", "-f", "-",
    ]  # fmt: skip
    query = "SELECT count(*) FROM :\"table\" WHERE key = :'key';"
    return subprocess.run(psql, input=query, check=True, capture_output=True, text=True).stdout.strip() == "1"
