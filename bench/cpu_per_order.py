"""CPU time each order costs the fulfillment service and its sidecar, at a rate the machine carries easily.

Latency percentiles on a shared 2-core machine spread widely from run to run (bench/results/); the CPU seconds a
process spends per order barely do, so this is the number to compare two builds by. Starts its own stack, sends
orders at a fixed rate with vegeta for `--duration` seconds, waits until every one is delivered (the carrier's
webhook comes about 5 s after shipping), and reads the processes' user + system time from /proc before and after.

    uv run python bench/cpu_per_order.py --rate 20 --duration 30
"""

import argparse
import base64
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from devstack.layout import Layout
from devstack.stack import Stack
from order_creation import BENCH_DIR, ORDER_API, WARM_UP_SECONDS, attack

PROCESSES = {"fulfillment app": "python -m fulfillment_service", "its sidecar": "daprd.*app-id.fulfillment-service"}


def cpu_seconds(pattern: str) -> float:
    """User + system CPU seconds of the processes whose command line matches `pattern`."""
    pids = subprocess.run(["pgrep", "-f", pattern], check=True, capture_output=True, text=True).stdout.split()
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until_delivered(order_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(order_ids)
    with httpx.Client(base_url=ORDER_API, timeout=10) as api:
        while pending and time.monotonic() < deadline:
            pending = {
                order_id for order_id in pending if api.get(f"/orders/{order_id}").json()["status"] != "delivered"
            }
            if pending:
                time.sleep(1)  # a benchmark's polling pace, not a test's synchronisation
    if pending:
        raise RuntimeError(f"{len(pending)} orders not delivered within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=20)
    parser.add_argument("--duration", type=int, default=30, help="seconds")
    arguments = parser.parse_args()
    vegeta = subprocess.run(
        ["bash", str(BENCH_DIR / "install-vegeta.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    stack = Stack(Layout.discover())
    stack.start()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            warm_up = attack(vegeta, arguments.rate, WARM_UP_SECONDS, Path(workdir))
            wait_until_delivered([json.loads(base64.b64decode(result["body"]))["id"] for result in warm_up])
            before = {name: cpu_seconds(pattern) for name, pattern in PROCESSES.items()}
            results = attack(vegeta, arguments.rate, arguments.duration, Path(workdir))
            order_ids = [json.loads(base64.b64decode(result["body"]))["id"] for result in results]
            wait_until_delivered(order_ids)
            after = {name: cpu_seconds(pattern) for name, pattern in PROCESSES.items()}
    finally:
        stack.stop()
    costs = ", ".join(f"{name} {1000 * (after[name] - before[name]) / len(order_ids):.2f} ms" for name in PROCESSES)
    print(f"{len(order_ids)} orders at {arguments.rate}/s, CPU per order: {costs}")


if __name__ == "__main__":
    main()
