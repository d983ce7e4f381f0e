"""The drills' report: every drill's audit row (tests/support/audit.py) as one table, with the date, the drill size
and the versions it ran on. tests/drills/conftest.py prints it at the end of the session, and writes it to the file
`ORDER_PLATFORM_DRILL_REPORT` names (`make drills` / `make drills-full` set it to tests/drills/REPORT.md; a run by
hand leaves the committed report alone unless it sets the variable too)."""

import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from devstack.layout import Layout

from tests.support.audit import DrillRow

REPORT_ENV = "ORDER_PLATFORM_DRILL_REPORT"
SIZE_ENV = "ORDER_PLATFORM_DRILL_SIZE"

COLUMNS = ("drill", "sent", "accepted", "refused", "errors", "lost", "duplicate shipments", "time to recover",
           "drill time", "audit")  # fmt: skip


def drill_size() -> str:
    return os.environ.get(SIZE_ENV, "ci")


def _output(command: Sequence[str], cwd: Path) -> str:
    try:
        completed = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        return f"unknown ({error})"
    return (completed.stdout or completed.stderr).strip() or f"unknown (exit {completed.returncode})"


def versions(layout: Layout) -> dict[str, str]:
    """What the drills ran on: the real binaries asked where they can be, the pins where not."""
    root = layout.root
    commit = _output(["git", "rev-parse", "--short=12", "HEAD"], root)
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=False)
    dirty = " + uncommitted changes" if changed.returncode == 0 and changed.stdout.strip() else ""
    kafka_jars = sorted(layout.kafka_libs.glob("kafka_2.13-*.jar")) if layout.kafka_libs.is_dir() else []
    kafka = kafka_jars[0].stem.removeprefix("kafka_2.13-") if kafka_jars else layout.versions.get("KAFKA_VERSION", "?")
    return {
        "daprd": _output([str(layout.dapr_bin / "daprd"), "--version"], root),
        "dapr CLI": _output([str(layout.dapr_bin / "dapr"), "version", "--output", "json"], root).replace("\n", " "),
        "Kafka": kafka,
        "Python": platform.python_version(),
        "git commit": commit + dirty,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
    }


def _cells(row: DrillRow) -> list[str]:
    recover = "-" if row.recover_seconds is None else f"{row.recover_seconds:.1f} s"
    audit = "clean" if row.clean else f"**{len(row.problems)} problem(s)**"
    return [row.drill, str(row.sent), str(row.accepted), str(row.refused), str(row.errors), str(row.lost),
            str(row.duplicate_shipments), recover, f"{row.run_seconds:.0f} s", audit]  # fmt: skip


def table(rows: Sequence[DrillRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def markdown(
    rows: Sequence[DrillRow], *, layout: Layout, outcome: str, command: str, failed: Sequence[str] = ()
) -> str:
    """The whole report: when, how big, on what, the table, what the audit found where it was not clean, and
    which drills failed (a drill that failed before its audit has no row)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Drill report",
        "",
        "Written by `make drills` / `make drills-full` (tests/drills/conftest.py); each number is defined in "
        "`tests/support/audit.py`. Do not edit by hand: run the drills again.",
        "",
        f"- date: {stamp}",
        f"- command: `{command}`",
        f"- drill size: {drill_size()} (`{SIZE_ENV}`)",
        f"- outcome: {outcome}",
        *(f"- {name}: {value}" for name, value in versions(layout).items()),
        "",
        table(rows),
        "",
    ]
    notes = [row for row in rows if row.notes]
    if notes:
        parts += ["## What else the drills measured", ""]
        parts += [f"- {row.drill}: {row.notes}" for row in notes]
        parts.append("")
    warned = [row for row in rows if row.warnings]
    if warned:
        parts += ["## What the audit noted (warnings: odd, no guarantee broken)", ""]
        for row in warned:
            parts.append(f"- {row.drill}: {len(row.warnings)} warning(s), e.g. {row.warnings[0]}")
        parts.append("")
    if failed:
        parts += ["## Drills that failed", ""]
        parts += [f"- `{nodeid}`" for nodeid in failed]
        parts.append("")
    unclean = [row for row in rows if not row.clean]
    if unclean:
        parts += ["## What the audit found", ""]
        for row in unclean:
            parts.append(f"### {row.drill}")
            parts += [f"- {problem}" for problem in row.problems[:50]]
            if len(row.problems) > 50:
                parts.append(f"- ... and {len(row.problems) - 50} more")
            parts.append("")
    return "\n".join(parts)
