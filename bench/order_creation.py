"""Order creation under a fixed arrival rate (vegeta: an open-model load), on the real stack.

Reports create latency percentiles as the client saw them, and, from each order's own timestamps, how long
fulfillment took to pick it up (`fulfillment.picked_up_at - created_at`) and to ship it (`shipped_at - created_at`).
Starts its own stack (`make down` first if one is running), writes bench/results/<date>-order-creation.md.

    uv run python bench/order_creation.py --rates 20 50 --duration 30
"""

import argparse
import base64
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from devstack.layout import Layout
from devstack.stack import Stack
from devstack.state_stores import DEFAULT_STATE_STORE, STATE_STORE_KINDS, StateStoreKind

ORDER_API = "http://127.0.0.1:8000"
BENCH_DIR = Path(__file__).resolve().parent
WARM_UP_SECONDS = 5


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def vegeta_binary() -> str:
    """The vegeta load generator's path, built first if missing (bench/install-vegeta.sh)."""
    return subprocess.run(
        ["bash", str(BENCH_DIR / "install-vegeta.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def attack_targets(vegeta: str, targets: Path, rate: int, seconds: int, results: Path) -> list[dict[str, Any]]:
    """Sends the requests of `targets` (vegeta's JSON format, round robin) at `rate` per second for `seconds`."""
    subprocess.run(
        [vegeta, "attack", "-format=json", f"-targets={targets}", f"-rate={rate}/s", f"-duration={seconds}s",
         "-timeout=10s", f"-output={results}"],
        check=True,
    )  # fmt: skip
    encoded = subprocess.run([vegeta, "encode", "-to=json", str(results)], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in encoded.stdout.splitlines() if line]


def attack(vegeta: str, rate: int, seconds: int, workdir: Path) -> list[dict[str, Any]]:
    """`POST /orders` of bench/order.json at `rate` per second for `seconds`."""
    body = base64.b64encode((BENCH_DIR / "order.json").read_bytes()).decode()
    target = {"method": "POST", "url": f"{ORDER_API}/orders", "header": {"Content-Type": ["application/json"]},
              "body": body}  # fmt: skip
    targets = workdir / "targets.json"
    targets.write_text(json.dumps(target) + "\n")
    return attack_targets(vegeta, targets, rate, seconds, workdir / f"results-{rate}.bin")


def created_order_ids(results: list[dict[str, Any]]) -> list[str]:
    """The ids of the orders that vegeta's `POST /orders` results created (answered 201)."""
    return [json.loads(base64.b64decode(str(result["body"])))["id"] for result in results if result["code"] == 201]


def fulfillment_delays(order_ids: list[str], timeout: float = 180) -> tuple[list[float], list[float]]:
    """(pickup, shipped) delays in ms, from the orders' own timestamps, once every order has shipped."""
    deadline = time.monotonic() + timeout
    pending = set(order_ids)
    pickups: list[float] = []
    shipments: list[float] = []
    with httpx.Client(base_url=ORDER_API, timeout=10) as api:
        while pending and time.monotonic() < deadline:
            for order_id in list(pending):
                order = api.get(f"/orders/{order_id}").json()
                details = order.get("fulfillment") or {}
                if details.get("shipped_at"):  # shipped, or delivered already (the carrier reports it 5 s later)
                    created = datetime.fromisoformat(order["created_at"])
                    pickups.append((datetime.fromisoformat(details["picked_up_at"]) - created).total_seconds() * 1000)
                    shipments.append((datetime.fromisoformat(details["shipped_at"]) - created).total_seconds() * 1000)
                    pending.discard(order_id)
            if pending:
                time.sleep(1)  # a benchmark's polling pace, not a test's synchronisation
    if pending:
        raise RuntimeError(f"{len(pending)} orders did not ship within {timeout} s")
    return sorted(pickups), sorted(shipments)


def summarise(rate: int, seconds: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    codes: dict[str, int] = {}
    for result in results:
        codes[str(result["code"])] = codes.get(str(result["code"]), 0) + 1
    latencies = sorted(result["latency"] / 1e6 for result in results)
    order_ids = created_order_ids(results)
    pickups, shipments = fulfillment_delays(order_ids)
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "requests": len(results),
        "status_codes": codes,
        "create_ms": {name: round(percentile(latencies, q), 1) for name, q in
                      (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
        "pickup_ms": {name: round(percentile(pickups, q), 1) for name, q in
                      (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
        "shipped_ms": {name: round(percentile(shipments, q), 1) for name, q in
                       (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
    }  # fmt: skip


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} cores ({cpu}), {memory_kib / 2**20:.0f} GiB, {platform.system()} {platform.release()}"


def report(layout: Layout, summaries: list[dict[str, Any]], state_store: StateStoreKind) -> str:
    versions = layout.versions
    lines = [
        f"# Order creation under a fixed arrival rate ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}. Everything (Kafka, 3 apps + 3 sidecars, and vegeta) on it.",
        f"Dapr {versions['DAPR_VERSION']}, Kafka {versions['KAFKA_VERSION']}, vegeta {versions['VEGETA_VERSION']};"
        f" state store: {state_store}; {WARM_UP_SECONDS} s warm-up per rate, not counted. Command: `uv run python"
        f" bench/order_creation.py --rates {' '.join(str(s['rate_per_s']) for s in summaries)} --duration"
        f" {summaries[0]['seconds']} --state-store {state_store}`.",
        "",
        "| rate | requests | answers | create p50 / p95 / p99 / max (ms) | pickup p50 / p95 / max (ms) |"
        " shipped p50 / p95 / max (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        c, p, sh = s["create_ms"], s["pickup_ms"], s["shipped_ms"]
        lines.append(
            f"| {s['rate_per_s']}/s | {s['requests']} | {s['status_codes']} | {c['p50']} / {c['p95']} / {c['p99']} /"
            f" {c['max']} | {p['p50']} / {p['p95']} / {p['max']} | {sh['p50']} / {sh['p95']} / {sh['max']} |"
        )
    lines += ["", "Pickup and shipped delays come from the orders' own timestamps (server clocks, one machine).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--duration", type=int, default=30, help="seconds per rate")
    parser.add_argument("--state-store", choices=STATE_STORE_KINDS, default=DEFAULT_STATE_STORE)
    arguments = parser.parse_args()
    layout = Layout.discover()
    vegeta = vegeta_binary()
    stack = Stack(layout, state_store=arguments.state_store)
    stack.start()
    summaries = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for rate in arguments.rates:
                attack(vegeta, rate, WARM_UP_SECONDS, Path(workdir))
                summaries.append(summarise(rate, arguments.duration, attack(vegeta, rate, arguments.duration,
                                                                              Path(workdir))))  # fmt: skip
                print(json.dumps(summaries[-1]), flush=True)
    finally:
        stack.stop()
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    store_suffix = "" if arguments.state_store == DEFAULT_STATE_STORE else f"-{arguments.state_store}"
    output = results_dir / f"{datetime.now(UTC):%Y-%m-%d}-order-creation{store_suffix}.md"
    output.write_text(report(layout, summaries, arguments.state_store))
    print(f"written: {output}")


if __name__ == "__main__":
    main()
