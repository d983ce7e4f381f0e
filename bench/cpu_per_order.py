"""CPU time each order costs every process of the stack, above idle, at a fixed arrival rate.

Latency percentiles on a shared 2-core machine spread widely from run to run; the CPU seconds a process spends per
order barely do, so this is the number to compare two builds by. Starts its own stack, warms it up, measures each
process's idle CPU rate, sends orders at a fixed rate with vegeta (an open-model load) for `--duration` seconds,
waits until the last one is delivered (the carrier's webhook comes about 5 s after shipping), and reads every
process's user + system time from /proc before and after. Per process: CPU per order above its idle rate, and the
peak resident memory (VmHWM) of the Python apps. Every order is checked delivered afterwards, outside the window.

    uv run python bench/cpu_per_order.py --rate 50 --duration 30
"""

import argparse
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from devstack.layout import Layout
from devstack.stack import Stack
from order_creation import ORDER_API, WARM_UP_SECONDS, attack, created_order_ids, machine, vegeta_binary

IDLE_SECONDS = 10


@dataclass(frozen=True)
class Measured:
    name: str
    pattern: str
    """A regular expression searched in each process's command line (argv joined by spaces); `uv run` launchers
    are left out."""
    python: bool = False


PROCESSES = (
    Measured("Kafka", r" kafka\.Kafka "),
    Measured("order app", r"python[0-9.]* -m order_service$", python=True),
    Measured("order sidecar", r"/daprd .*--app-id order-service "),
    Measured("fulfillment app", r"python[0-9.]* -m fulfillment_service$", python=True),
    Measured("fulfillment sidecar", r"/daprd .*--app-id fulfillment-service "),
    Measured("carrier mock", r"python[0-9.]* -m shipping_mock$", python=True),
    Measured("carrier mock sidecar", r"/daprd .*--app-id shipping-mock "),
)


def pids_of(process: Measured) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        command = b" ".join(argv).decode().strip()
        if argv and Path(argv[0].decode()).name != "uv" and re.search(process.pattern, command):
            pids.append(int(entry.name))
    if not pids:
        raise RuntimeError(f"no process matches {process.pattern!r}")
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (fields 14 and 15 of proc(5)'s stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]))
    return peak / 1024


def snapshot(pids: dict[str, list[int]]) -> tuple[float, dict[str, float]]:
    return time.monotonic(), {name: cpu_seconds(process_pids) for name, process_pids in pids.items()}


def status_of(api: httpx.Client, order_id: str) -> str:
    status: str = api.get(f"/orders/{order_id}").json()["status"]
    return status


def wait_until_delivered(api: httpx.Client, order_id: str, timeout: float = 300) -> None:
    """One order, polled once a second: the measured window must not be loaded by the check itself."""
    deadline = time.monotonic() + timeout
    while status_of(api, order_id) != "delivered":
        if time.monotonic() > deadline:
            raise RuntimeError(f"order {order_id} not delivered within {timeout} s")
        time.sleep(1)  # a benchmark's polling pace, not a test's synchronisation


def order_ids_of(results: list[dict[str, Any]]) -> list[str]:
    ids = created_order_ids(results)
    if len(ids) != len(results):
        raise RuntimeError(f"{len(results) - len(ids)} of {len(results)} creates were not answered 201")
    return ids


def report(*, rate: int, orders: int, per_order_ms: dict[str, float], idle_pct: dict[str, float],
           rss: dict[str, float], command: str, layout: Layout) -> str:  # fmt: skip
    versions = layout.versions
    lines = [
        f"# CPU per order, every process ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}; Dapr {versions['DAPR_VERSION']}, Kafka {versions['KAFKA_VERSION']}. {orders} orders"
        f" at {rate}/s, each created, shipped and delivered; CPU above each process's idle rate"
        f" (measured over {IDLE_SECONDS} s). Command: `{command}`.",
        "",
        "| process | CPU per order (ms) | idle (% of a core) | peak RSS (MiB) |",
        "|---|---|---|---|",
    ]
    for name, cost in per_order_ms.items():
        memory = f"{rss[name]:.0f}" if name in rss else ""
        lines.append(f"| {name} | {cost:.2f} | {idle_pct[name]:.1f} | {memory} |")
    lines += [f"| **total** | **{sum(per_order_ms.values()):.2f}** | {sum(idle_pct.values()):.1f} | |", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds")
    parser.add_argument("--output", type=Path, help="also write the table here (Markdown)")
    arguments = parser.parse_args()
    command = f"uv run python bench/cpu_per_order.py --rate {arguments.rate} --duration {arguments.duration}"
    vegeta = vegeta_binary()
    layout = Layout.discover()
    stack = Stack(layout)
    stack.start()
    try:
        with tempfile.TemporaryDirectory() as workdir, httpx.Client(base_url=ORDER_API, timeout=10) as api:
            warm_up = order_ids_of(attack(vegeta, arguments.rate, WARM_UP_SECONDS, Path(workdir)))
            wait_until_delivered(api, warm_up[-1])
            pids = {process.name: pids_of(process) for process in PROCESSES}
            idle_start, idle_before = snapshot(pids)
            time.sleep(IDLE_SECONDS)  # the idle window being measured
            idle_end, idle_after = snapshot(pids)
            idle_rate = {name: (idle_after[name] - idle_before[name]) / (idle_end - idle_start) for name in pids}
            start, before = snapshot(pids)
            order_ids = order_ids_of(attack(vegeta, arguments.rate, arguments.duration, Path(workdir)))
            wait_until_delivered(api, order_ids[-1])
            end, after = snapshot(pids)
            rss = {process.name: peak_rss_mib(pids[process.name]) for process in PROCESSES if process.python}
            undelivered = [order_id for order_id in order_ids if status_of(api, order_id) != "delivered"]
            if undelivered:
                raise RuntimeError(f"{len(undelivered)} orders not delivered when the last one was")
    finally:
        stack.stop()
    per_order_ms = {
        name: 1000 * max(0.0, after[name] - before[name] - idle_rate[name] * (end - start)) / len(order_ids)
        for name in pids
    }
    idle_pct = {name: 100 * rate for name, rate in idle_rate.items()}
    table = report(rate=arguments.rate, orders=len(order_ids), per_order_ms=per_order_ms, idle_pct=idle_pct, rss=rss,
                   command=command, layout=layout)  # fmt: skip
    print(table)
    if arguments.output:
        arguments.output.write_text(table)


if __name__ == "__main__":
    main()
