"""The stack's state as the SQLite stores hold it, read directly (read-only) by the drills."""

import sqlite3
from pathlib import Path

from devstack.layout import Layout


def largest_stored_value(layout: Layout) -> tuple[str, int]:
    """The key of the largest value in the stack's SQLite state stores, and its size in bytes."""
    largest = ("", 0)
    for database in sorted(Path(layout.state_dir).glob("*.db")):
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            row = connection.execute(
                "SELECT key, length(value) FROM state ORDER BY length(value) DESC LIMIT 1"
            ).fetchone()
        if row is not None and row[1] > largest[1]:
            largest = (row[0], row[1])
    return largest
