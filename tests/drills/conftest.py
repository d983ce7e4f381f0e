"""What the drills share: app instances they start by hand, the stack's apps and sidecars put back afterwards, and
the audit every drill ends with, whose rows make the session's report.

The report (tests/support/drill_report.py) is printed at the end of every drill session, and written to the file
named by `ORDER_PLATFORM_DRILL_REPORT` only when that is set: `make drills` and `make drills-full` set it to
tests/drills/REPORT.md, so a partial run by hand never overwrites the committed report by accident.
"""

import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from devstack.layout import Layout
from devstack.stack import Stack, ports_in_use

from tests.support.audit import Audit, DrillRow
from tests.support.drill_report import REPORT_ENV, markdown, table
from tests.support.instances import FULFILLMENT, ORDER_SERVICE, Instances

ROWS = pytest.StashKey[list[DrillRow]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []


@pytest.fixture(scope="session")
def from_nothing() -> bool:
    """The drills' stack starts empty: no orders, records or events an earlier session of this checkout left (in
    CI the end-to-end and launcher stacks run before it), which would be worked on, or dead-lettered, mid-drill."""
    return True


@pytest.fixture
def audit(stack: Stack, request: pytest.FixtureRequest) -> Audit:
    """The drill's audit, started before anything else of the drill: `audit.check(...)` at its end."""
    return Audit(request.config.stash[ROWS])


@pytest.fixture
def instances(stack: Stack, layout: Layout) -> Iterator[Instances]:
    """Instances a drill starts (stopped after it). An app or sidecar of dapr.yaml the drill killed is started
    again, as `dapr run` had it, and stopped with the stack, so the drills after it find the whole system."""
    started = Instances(layout)
    try:
        yield started
    finally:
        started.stop_all()
        restored = Instances(layout)
        if ports_in_use([ORDER_SERVICE.dapr_http]) == []:
            stack.processes.append(
                restored.sidecar("order-service-dapr-restored", "order-service", ORDER_SERVICE, "order-service")
            )
        if ports_in_use([FULFILLMENT.dapr_http]) == []:
            stack.processes.append(
                restored.sidecar(
                    "fulfillment-service-dapr-restored", "fulfillment-service", FULFILLMENT, "fulfillment-service"
                )
            )
        if ports_in_use([ORDER_SERVICE.app]) == []:
            stack.processes.append(
                restored.app("order-service-restored", "order_service", "order-service", ORDER_SERVICE)
            )
        if ports_in_use([FULFILLMENT.app]) == []:
            stack.processes.append(restored.fulfillment("fulfillment-service-restored"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    rows = config.stash.get(ROWS, [])
    stats = terminalreporter.stats
    failed = [report.nodeid for kind in ("failed", "error") for report in stats.get(kind, [])]
    if not rows and not failed:
        return
    terminalreporter.section("drill audit")
    terminalreporter.write_line(table(rows))
    target = os.environ.get(REPORT_ENV)
    if not target:
        terminalreporter.write_line(f"(not written to a file: {REPORT_ENV} is not set; `make drills` sets it)")
        return
    outcome = ", ".join(f"{len(stats[kind])} {kind}" for kind in ("passed", "failed", "error") if stats.get(kind))
    command = os.environ.get("ORDER_PLATFORM_DRILL_COMMAND") or shlex.join(["pytest", *sys.argv[1:]])
    path = Path(target)
    report = markdown(rows, layout=Layout.discover(), outcome=outcome or "nothing ran", command=command, failed=failed)
    path.write_text(report)
    terminalreporter.write_line(f"drill report written to {path}")
