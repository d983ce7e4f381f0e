"""What this machine carries, on one real stack: steady load, a capacity search, a spike, and the sidecar's ceiling.

Every load is open-model (vegeta: a fixed arrival rate, arrivals never wait for answers); only 127.0.0.1 is sent to.

1. Steady load: `POST /orders` at one rate; create latency from vegeta, pickup latency
   (`fulfillment.picked_up_at - created_at`) from each order read back, and every order read back shipped or
   delivered.
2. Capacity search: the rate steps up until create P95 passes 100 ms, pickup P95 passes 5 s, more than 1 % of
   creates fail, or the backlog (orders created but not yet picked up) grows through the step.
3. Spike: 500/s for 10 s; create latency, errors, one shipment per order at the carrier mock, and the backlog and
   pickup latency each second until it is gone.
4. Ceiling: the order service's sidecar alone (its HTTP API, no app in front): a ~1 KB state write plus a publish
   per operation, stepped up until either's P95 passes 100 ms.

Orders are read back after each step, never while it is measured: those GETs cost CPU on the same two cores. The
backlog over time comes from the orders' own timestamps (server clocks, one machine), so it costs nothing while
measured. Before the next step the last one's work must be done: a sample of its orders delivered and neither
app's Kafka consumer group behind, checked once a second. During the spike, fulfillment's consumer lag on
order-events is sampled once a second too. The spike runs last, after the ceiling: its backlog may outlast the
run. Writes bench/results/<date>-capacity.md and two PNG plots beside it.

    uv run python bench/capacity.py            # the full run, 11-14 minutes (--budget-seconds bounds the spike's wait)
    uv run python bench/capacity.py --quick    # every part shortened, about 5 minutes
"""

import argparse
import base64
import json
import math
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from devstack import kafka
from devstack.dapr import stored_secrets
from devstack.layout import APPS, LOOPBACK, Layout
from devstack.stack import SUBSCRIBER_GROUPS, Stack
from order_creation import (
    BENCH_DIR,
    ORDER_API,
    WARM_UP_SECONDS,
    attack,
    attack_targets,
    created_order_ids,
    machine,
    percentile,
    vegeta_binary,
)

CARRIER_ADMIN = f"http://{LOOPBACK}:{APPS[2].app_port}/admin"
ORDER_SIDECAR = f"http://{LOOPBACK}:{APPS[0].dapr_http_port}"
FULFILLMENT_GROUP = APPS[1].app_id
ORDER_EVENTS = SUBSCRIBER_GROUPS[FULFILLMENT_GROUP]
FINAL_STATUSES = frozenset({"shipped", "delivered"})

CREATE_P95_LIMIT_MS = 100.0
PICKUP_P95_LIMIT_MS = 5000.0
CEILING_P95_LIMIT_MS = 100.0
ERROR_LIMIT = 0.01
"""The share of requests that may be answered other than 2xx (or not at all) before a step fails."""

CEILING_STATE_STORE = "order-store"
CEILING_PUBSUB = "order-pubsub"
CEILING_TOPIC = "bench-ceiling"
CEILING_KEY_PREFIX = "bench-ceiling|"
CEILING_VALUE = {"payload": "x" * 1000}
DELETES_PER_TRANSACTION = 500

SETTLE_TIMEOUT_S = 150
SETTLE_SAMPLE = 25
"""How many of a step's orders are watched (once a second) to tell that the step's work is done."""
READ_BACK_TIMEOUT_S = 60
READ_BACK_CONCURRENCY = 8
PERCENTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))


@dataclass(frozen=True)
class Scale:
    steady_rate: int
    steady_seconds: int
    step_rates: list[int]
    step_seconds: int
    spike_rate: int
    spike_seconds: int
    ceiling_rates: list[int]
    ceiling_seconds: int
    budget_seconds: int
    """The spike, last, may wait for its backlog to drain until this long after the start, less its read-back."""


FULL = Scale(steady_rate=100, steady_seconds=60, step_rates=[20, 35, 50, 75, 100, 150, 200, 250, 300, 400],
             step_seconds=30, spike_rate=500, spike_seconds=10,
             ceiling_rates=[100, 200, 300, 400, 600, 800, 1000, 1500], ceiling_seconds=15,
             budget_seconds=14 * 60)  # fmt: skip
QUICK = Scale(steady_rate=100, steady_seconds=15, step_rates=[20, 50, 100, 150, 200, 300], step_seconds=10,
              spike_rate=500, spike_seconds=4, ceiling_rates=[100, 300, 600, 1000], ceiling_seconds=5,
              budget_seconds=6 * 60)  # fmt: skip


@dataclass(frozen=True)
class Timeline:
    """One order as read back: when it was created and picked up (Unix seconds), and whether it shipped."""

    created: float
    picked_up: float | None
    final: bool


@dataclass(frozen=True)
class Step:
    """One rate held for `seconds`: what vegeta saw, and the orders read back afterwards."""

    rate: int
    seconds: int
    started: float
    status_codes: dict[str, int]
    create_ms: dict[str, float]
    pickup_ms: dict[str, float]
    orders: int
    not_final: int
    backlog: list[int]
    """Orders created but not yet picked up, at the end of each second of the step."""
    drain_seconds: float | None
    """From the step's end until its last order was picked up (None: one was not, within the deadline)."""

    @property
    def error_share(self) -> float:
        requests = sum(self.status_codes.values())
        return 1 - self.status_codes.get("201", 0) / requests if requests else 1.0

    def failure(self) -> str | None:
        """Why this rate is past capacity, or None."""
        if self.create_ms["p95"] > CREATE_P95_LIMIT_MS:
            return f"create P95 {self.create_ms['p95']:.0f} ms > {CREATE_P95_LIMIT_MS:.0f} ms"
        if self.error_share > ERROR_LIMIT:
            return f"{100 * self.error_share:.1f} % of creates not answered 201 ({answers(self.status_codes)})"
        if self.pickup_ms["p95"] > PICKUP_P95_LIMIT_MS:
            return f"pickup P95 {self.pickup_ms['p95'] / 1000:.1f} s > {PICKUP_P95_LIMIT_MS / 1000:.0f} s"
        third = max(1, len(self.backlog) // 3)
        growth = mean(self.backlog[-third:]) - mean(self.backlog[:third])
        if growth > self.rate:
            return f"backlog grew by {growth:.0f} orders (over a second of arrivals) from the first third to the last"
        return None


@dataclass(frozen=True)
class Spike:
    step: Step
    shipments_per_order: Counter[int]
    """How many orders have 0, 1, 2, ... shipments at the carrier mock."""
    shipped_since_spike: tuple[int, int]
    """(shipments, distinct orders) the carrier mock stored since the spike started: creates that vegeta gave up on
    may still have made orders."""
    lag_samples: list[tuple[float, int]]
    """(seconds since the spike started, fulfillment's consumer lag on order-events), once a second."""
    pickups_by_second: list[tuple[int, float, float]]
    """(second since the spike started, pickup p50, p95 in ms) of the orders picked up in that second."""


@dataclass(frozen=True)
class CeilingStep:
    rate: int
    status_codes: dict[str, int]
    state_ms: dict[str, float]
    publish_ms: dict[str, float]

    def failure(self) -> str | None:
        requests = sum(self.status_codes.values())
        errors = requests - sum(count for code, count in self.status_codes.items() if code.startswith("2"))
        worst = max(self.state_ms["p95"], self.publish_ms["p95"])
        if worst > CEILING_P95_LIMIT_MS:
            return f"P95 {worst:.0f} ms > {CEILING_P95_LIMIT_MS:.0f} ms"
        if errors > ERROR_LIMIT * requests:
            return f"{errors} of {requests} requests not answered 2xx ({answers(self.status_codes)})"
        return None


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __call__(self, message: str) -> None:
        print(f"[capacity {self.elapsed():6.0f} s] {message}", flush=True)


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {name: round(percentile(ordered, q), 1) if ordered else math.nan for name, q in PERCENTILES}


def status_codes(results: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(str(result["code"]) for result in results))


def answers(codes: dict[str, int]) -> str:
    """vegeta's status code counts as `201 x 1500, none x 3` (0: no answer within the timeout, or no connection)."""
    return ", ".join(f"{'none' if code == '0' else code} x {count}" for code, count in sorted(codes.items()))


def unix_seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def read_back(order_ids: list[str], timeout: float = READ_BACK_TIMEOUT_S) -> dict[str, Timeline]:
    """Each order's timeline, read with GET /orders/{id} until it shipped (or `timeout`: then as it last was)."""
    timelines: dict[str, Timeline] = {}
    pending = list(order_ids)
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=ORDER_API, timeout=10) as api, ThreadPoolExecutor(READ_BACK_CONCURRENCY) as pool:

        def timeline_of(order_id: str) -> Timeline:
            order = api.get(f"/orders/{order_id}").raise_for_status().json()
            picked_up = (order.get("fulfillment") or {}).get("picked_up_at")
            return Timeline(unix_seconds(order["created_at"]), unix_seconds(picked_up) if picked_up else None,
                            order["status"] in FINAL_STATUSES)  # fmt: skip

        while pending:
            for order_id, timeline in zip(pending, pool.map(timeline_of, pending), strict=True):
                timelines[order_id] = timeline
            pending = [order_id for order_id in pending if not timelines[order_id].final]
            if pending and time.monotonic() > deadline:
                break
            if pending:
                time.sleep(1)  # a benchmark's polling pace, not a test's synchronisation
    return timelines


def backlog_each_second(timelines: list[Timeline], start: float, seconds: int) -> list[int]:
    """Orders created but not yet picked up at start + 1, start + 2, ... start + seconds."""
    ends = [start + second for second in range(1, seconds + 1)]
    return [
        sum(1 for t in timelines if t.created <= end and (t.picked_up is None or t.picked_up > end)) for end in ends
    ]


def consumer_lag(admin: AdminClient, group: str = FULFILLMENT_GROUP) -> int:
    """Events on its topic that this app's consumer group has not yet committed as consumed."""
    topic = SUBSCRIBER_GROUPS[group]
    committed_offsets = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    committed = {p.partition: max(0, p.offset) for p in committed_offsets.result(timeout=10).topic_partitions}
    latest_offset: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # confluent-kafka's stubs
    partitions = {TopicPartition(topic, p): latest_offset for p in range(kafka.TOPICS[topic])}
    latest = {tp.partition: future.result(timeout=10).offset for tp, future in admin.list_offsets(partitions).items()}
    return sum(end - committed.get(partition, 0) for partition, end in latest.items())


def settle_sample(order_ids: list[str]) -> list[str]:
    """A few orders spread over the step, and its last ones: the orders watched while a backlog drains."""
    spread = order_ids[:: max(1, len(order_ids) // (SETTLE_SAMPLE - 5))]
    return list(dict.fromkeys(spread + order_ids[-5:]))


def settled(admin: AdminClient, api: httpx.Client, sample: list[str]) -> bool:
    """The sample's orders are all delivered and neither app's consumer group has an event left to consume."""
    return all(api.get(f"/orders/{order_id}").json()["status"] == "delivered" for order_id in sample) and not any(
        consumer_lag(admin, group) for group in SUBSCRIBER_GROUPS
    )


def wait_until_settled(admin: AdminClient, order_ids: list[str], timeout: float = SETTLE_TIMEOUT_S,
                       on_tick: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
    """Once a second until the work of these orders is done (False: not within `timeout`)."""
    deadline = time.monotonic() + timeout
    sample = settle_sample(order_ids)
    with httpx.Client(base_url=ORDER_API, timeout=10) as api:
        while time.monotonic() < deadline:
            on_tick()
            if settled(admin, api, sample):
                return True
            time.sleep(1)  # a benchmark's sampling pace, not a test's synchronisation
    return False


def measure_orders(vegeta: str, rate: int, seconds: int, workdir: Path, admin: AdminClient) -> Step:
    started = time.time()
    results = attack(vegeta, rate, seconds, workdir)
    order_ids = created_order_ids(results)
    wait_until_settled(admin, order_ids)
    return step_of(rate, seconds, started, results, list(read_back(order_ids).values()))


def step_of(rate: int, seconds: int, started: float, results: list[dict[str, Any]], timelines: list[Timeline], *,
            backlog_seconds: int | None = None) -> Step:  # fmt: skip
    """`backlog_seconds`: how long to follow the backlog from `started` (the step's own `seconds` if None)."""
    picked_up = [t.picked_up for t in timelines if t.picked_up is not None]
    return Step(
        rate=rate,
        seconds=seconds,
        started=started,
        status_codes=status_codes(results),
        create_ms=percentiles([result["latency"] / 1e6 for result in results]),
        pickup_ms=percentiles([1000 * (t.picked_up - t.created) for t in timelines if t.picked_up is not None]),
        orders=len(timelines),
        not_final=sum(1 for t in timelines if not t.final),
        backlog=backlog_each_second(timelines, started, backlog_seconds or seconds),
        drain_seconds=max(0.0, max(picked_up) - started - seconds) if len(picked_up) == len(timelines) else None,
    )


def search_capacity(vegeta: str, scale: Scale, workdir: Path, admin: AdminClient,
                    progress: Progress) -> tuple[list[Step], str]:  # fmt: skip
    """Every step measured, and why the search stopped."""
    steps: list[Step] = []
    for rate in scale.step_rates:
        progress(f"capacity: {rate}/s for {scale.step_seconds} s")
        steps.append(measure_orders(vegeta, rate, scale.step_seconds, workdir, admin))
        progress(f"capacity: {rate}/s: {describe(steps[-1])}")
        failure = steps[-1].failure()
        if failure:
            return steps, f"{rate}/s failed: {failure}"
    return steps, f"every rate up to {scale.step_rates[-1]}/s passed"


def measure_spike(vegeta: str, scale: Scale, workdir: Path, admin: AdminClient, settle_timeout: float) -> Spike:
    lag_samples: list[tuple[float, int]] = []
    started = time.time()

    def sample_lag() -> None:
        lag_samples.append((time.time() - started, consumer_lag(admin)))

    with ThreadPoolExecutor(1) as attacker:
        sent = attacker.submit(attack, vegeta, scale.spike_rate, scale.spike_seconds, workdir)
        while not sent.done():
            sample_lag()
            time.sleep(max(0.0, 1 - (time.time() - started) % 1))  # the next whole second since the start
        results = sent.result()
    order_ids = created_order_ids(results)
    wait_until_settled(admin, order_ids, settle_timeout, on_tick=sample_lag)
    timelines = list(read_back(order_ids).values())
    last_pickup = max((t.picked_up for t in timelines if t.picked_up is not None), default=started)
    shipments = httpx.get(f"{CARRIER_ADMIN}/shipments", timeout=30).raise_for_status().json()
    since_spike = [s for s in shipments if unix_seconds(s["created_at"]) >= started and s["voided_at"] is None]
    per_order = Counter(shipment["order_id"] for shipment in since_spike)
    by_second: dict[int, list[float]] = {}
    for t in timelines:
        if t.picked_up is not None:
            by_second.setdefault(int(t.picked_up - started), []).append(1000 * (t.picked_up - t.created))
    followed = math.ceil(last_pickup - started) + 1
    return Spike(
        step=step_of(scale.spike_rate, scale.spike_seconds, started, results, timelines, backlog_seconds=followed),
        shipments_per_order=Counter(per_order[order_id] for order_id in order_ids),
        shipped_since_spike=(len(since_spike), len(per_order)),
        lag_samples=lag_samples,
        pickups_by_second=[(second, percentiles(delays)["p50"], percentiles(delays)["p95"])
                           for second, delays in sorted(by_second.items())],
    )  # fmt: skip


def sidecar_headers() -> dict[str, list[str]]:
    """vegeta's form of the headers a call to the order sidecar's API needs (its Dapr API token)."""
    token = stored_secrets(Layout.discover())["DAPR_API_TOKEN"]
    return {"Content-Type": ["application/json"], "dapr-api-token": [token]}


def write_ceiling_targets(path: Path, keys: list[str]) -> None:
    """Per key: a state write of a ~1 KB value, then a publish of it, to the order service's sidecar."""
    headers = sidecar_headers()
    publish = base64.b64encode(json.dumps(CEILING_VALUE).encode()).decode()
    with path.open("w") as targets:
        for key in keys:
            state = base64.b64encode(json.dumps([{"key": key, "value": CEILING_VALUE}]).encode()).decode()
            for url, body in ((f"{ORDER_SIDECAR}/v1.0/state/{CEILING_STATE_STORE}", state),
                              (f"{ORDER_SIDECAR}/v1.0/publish/{CEILING_PUBSUB}/{CEILING_TOPIC}", publish)):  # fmt: skip
                targets.write(json.dumps({"method": "POST", "url": url, "header": headers, "body": body}) + "\n")


def delete_ceiling_keys(keys: list[str], attempts: int = 3) -> int:
    """Deletes the bench's keys from the order store; returns how many are left (a busy store may refuse)."""
    headers = {name: values[0] for name, values in sidecar_headers().items()}
    left = 0
    with httpx.Client(base_url=ORDER_SIDECAR, headers=headers, timeout=30) as sidecar:
        for first in range(0, len(keys), DELETES_PER_TRANSACTION):
            batch = keys[first : first + DELETES_PER_TRANSACTION]
            body = {"operations": [{"operation": "delete", "request": {"key": key}} for key in batch]}
            for attempt in range(attempts):
                if sidecar.post(f"/v1.0/state/{CEILING_STATE_STORE}/transaction", json=body).is_success:
                    break
                time.sleep(attempt + 1)  # a store busy with a transaction of its own: wait, then ask again
            else:
                left += len(batch)
    return left


def measure_ceiling(vegeta: str, scale: Scale, workdir: Path, progress: Progress) -> tuple[list[CeilingStep], str]:
    """Every step measured, and why the search stopped (with the bench's keys that could not be deleted)."""
    kafka.ensure_topics({CEILING_TOPIC: kafka.TOPICS[ORDER_EVENTS]})
    run = uuid.uuid4().hex[:8]
    steps: list[CeilingStep] = []
    keys: list[str] = []
    targets = workdir / "ceiling-targets.json"
    try:
        keys = [
            f"{CEILING_KEY_PREFIX}{run}|warm-up|{index}" for index in range(scale.ceiling_rates[0] * WARM_UP_SECONDS)
        ]
        write_ceiling_targets(targets, keys)
        progress(f"ceiling: warm-up at {scale.ceiling_rates[0]}/s for {WARM_UP_SECONDS} s")
        attack_targets(vegeta, targets, 2 * scale.ceiling_rates[0], WARM_UP_SECONDS, workdir / "ceiling.bin")
        for rate in scale.ceiling_rates:
            step_keys = [f"{CEILING_KEY_PREFIX}{run}|{rate}|{index}" for index in range(rate * scale.ceiling_seconds)]
            keys += step_keys
            write_ceiling_targets(targets, step_keys)
            progress(f"ceiling: {rate} state writes + {rate} publishes /s for {scale.ceiling_seconds} s")
            results = attack_targets(vegeta, targets, 2 * rate, scale.ceiling_seconds, workdir / "ceiling.bin")
            steps.append(CeilingStep(
                rate=rate,
                status_codes=status_codes(results),
                state_ms=percentiles([r["latency"] / 1e6 for r in results if "/v1.0/state/" in r["url"]]),
                publish_ms=percentiles([r["latency"] / 1e6 for r in results if "/v1.0/publish/" in r["url"]]),
            ))  # fmt: skip
            failure = steps[-1].failure()
            progress(
                f"ceiling: {rate}/s: state {steps[-1].state_ms}, publish {steps[-1].publish_ms}, {failure or 'ok'}"
            )
            if failure:
                break
    finally:
        left = delete_ceiling_keys(keys)
    failure = steps[-1].failure()
    stop = (
        f"{steps[-1].rate}/s failed: {failure}" if failure else f"every rate up to {scale.ceiling_rates[-1]}/s passed"
    )
    return steps, stop + (f"; {left} of its keys could not be deleted" if left else "")


def describe(step: Step) -> str:
    c, p = step.create_ms, step.pickup_ms
    return (f"create p50/p95/p99 {c['p50']}/{c['p95']}/{c['p99']} ms, pickup p50/p95 {p['p50']}/{p['p95']} ms,"
            f" answers {answers(step.status_codes)}, {step.not_final} of {step.orders} not shipped")  # fmt: skip


def plot_capacity(steps: list[Step], path: Path) -> None:
    rates = [step.rate for step in steps]
    figure, (create, pickup) = plt.subplots(2, 1, sharex=True, figsize=(8, 7))
    for name in ("p50", "p95", "p99"):
        create.plot(rates, [step.create_ms[name] for step in steps], marker="o", label=f"create {name}")
    create.axhline(CREATE_P95_LIMIT_MS, color="grey", linestyle="--", label="create P95 limit")
    for name in ("p50", "p95"):
        pickup.plot(rates, [step.pickup_ms[name] for step in steps], marker="o", label=f"pickup {name}")
    pickup.axhline(PICKUP_P95_LIMIT_MS, color="grey", linestyle="--", label="pickup P95 limit")
    for axes, what in ((create, "create latency (ms)"), (pickup, "pickup latency (ms)")):
        axes.set_yscale("log")
        axes.set_ylabel(what)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    pickup.set_xlabel("offered rate (orders/s)")
    create.set_title("Capacity search: latency against offered rate")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_spike(spike: Spike, spike_seconds: int, path: Path) -> None:
    figure, (backlog, pickup) = plt.subplots(2, 1, sharex=True, figsize=(8, 7))
    backlog.plot(range(1, len(spike.step.backlog) + 1), spike.step.backlog, label="orders created, not picked up")
    backlog.plot([s for s, _ in spike.lag_samples], [lag for _, lag in spike.lag_samples], linestyle=":",
                 label="fulfillment consumer lag (events)")  # fmt: skip
    backlog.set_ylabel("backlog")
    pickup.plot([s for s, _, _ in spike.pickups_by_second], [p50 for _, p50, _ in spike.pickups_by_second],
                label="pickup p50")  # fmt: skip
    pickup.plot([s for s, _, _ in spike.pickups_by_second], [p95 for _, _, p95 in spike.pickups_by_second],
                label="pickup p95")  # fmt: skip
    pickup.set_ylabel("pickup latency (ms) of the orders picked up that second")
    pickup.set_xlabel("seconds since the spike started")
    for axes in (backlog, pickup):
        axes.axvspan(0, spike_seconds, color="orange", alpha=0.15)
        axes.grid(True, alpha=0.3)
        axes.legend()
    backlog.set_title(f"Spike: {spike.step.rate}/s for {spike_seconds} s (shaded)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report(*, layout: Layout, command: str, started: datetime, scale: Scale, steady: Step, capacity: list[Step],
           capacity_stop: str, spike: Spike, ceiling: list[CeilingStep], ceiling_stop: str,
           plots: list[Path]) -> str:  # fmt: skip
    versions = layout.versions
    passed = [step.rate for step in capacity if step.failure() is None]
    highest = f"{passed[-1]}/s" if passed else "none"
    ceiling_passed = [step.rate for step in ceiling if step.failure() is None]
    ceiling_highest = f"{ceiling_passed[-1]}/s" if ceiling_passed else "none"
    c, p = steady.create_ms, steady.pickup_ms
    lines = [
        f"# Capacity on one machine ({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine()}. Everything (Kafka, 3 apps + 3 sidecars, and vegeta) on it.",
        f"Dapr {versions['DAPR_VERSION']}, Kafka {versions['KAFKA_VERSION']}, vegeta {versions['VEGETA_VERSION']};"
        f" SQLite state stores. Command: `{command}`. One stack for the whole run, warmed up for"
        f" {WARM_UP_SECONDS} s; every load open-model (vegeta, fixed arrival rate); orders read back after each"
        " step, not during it.",
        "",
        "**Headline:** "
        f"highest rate that passed the capacity search: {highest} ({capacity_stop}); the order sidecar alone"
        f" sustained {ceiling_highest} state writes + publishes with P95 <= {CEILING_P95_LIMIT_MS:.0f} ms.",
        "",
        f"## 1. Steady load: {steady.rate}/s for {steady.seconds} s",
        "",
        "| orders | answers | create p50 / p95 / p99 / max (ms) | pickup p50 / p95 / p99 (ms) | read back shipped |",
        "|---|---|---|---|---|",
        f"| {steady.orders} | {answers(steady.status_codes)} | {c['p50']} / {c['p95']} / {c['p99']} / {c['max']} |"
        f" {p['p50']} / {p['p95']} / {p['p99']} | {steady.orders - steady.not_final} of {steady.orders} |",
        "",
        f"## 2. Capacity search ({scale.step_seconds} s per rate)",
        "",
        f"A rate passes while create P95 <= {CREATE_P95_LIMIT_MS:.0f} ms, at most {100 * ERROR_LIMIT:.0f} % of"
        f" creates fail, pickup P95 <= {PICKUP_P95_LIMIT_MS / 1000:.0f} s and the backlog (orders created, not yet"
        " picked up, from their timestamps) grows by less than one second of arrivals from the step's first third"
        f" to its last. **Highest rate that passed: {highest}. Stopped: {capacity_stop}.**",
        "",
        "| rate | answers | create p50 / p95 / p99 / max (ms) | pickup p50 / p95 / p99 (ms) | backlog first / last"
        " second | drained after | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for step in capacity:
        c, p = step.create_ms, step.pickup_ms
        drained = f"{step.drain_seconds:.0f} s" if step.drain_seconds is not None else "not drained"
        lines.append(
            f"| {step.rate}/s | {answers(step.status_codes)} | {c['p50']} / {c['p95']} / {c['p99']} / {c['max']} |"
            f" {p['p50']} / {p['p95']} / {p['p99']} | {step.backlog[0]} / {step.backlog[-1]} | {drained} |"
            f" {step.failure() or 'pass'} |"
        )
    s = spike.step
    c, p = s.create_ms, s.pickup_ms
    once = spike.shipments_per_order.get(1, 0)
    gone = f"{s.drain_seconds:.1f} s" if s.drain_seconds is not None else "not within the run"
    shipments, shipped_orders = spike.shipped_since_spike
    lines += [
        "",
        f"## 3. Spike: {s.rate}/s for {scale.spike_seconds} s",
        "",
        "| orders created (201) | answers | create p50 / p95 / p99 / max (ms) | pickup p50 / p95 / max (ms) |"
        " shipped once | peak backlog | backlog gone after the spike |",
        "|---|---|---|---|---|---|---|",
        f"| {s.orders} | {answers(s.status_codes)} | {c['p50']} / {c['p95']} / {c['p99']} / {c['max']} |"
        f" {p['p50']} / {p['p95']} / {p['max']} |"
        f" {once} of {s.orders} (shipments per order: {dict(sorted(spike.shipments_per_order.items()))}) |"
        f" {max(s.backlog, default=0)} | {gone} |",
        "",
        f"Shipments are counted at the carrier mock (its admin API), voided ones left out: since the spike started it"
        f" stored {shipments} shipments for {shipped_orders} distinct orders (creates vegeta gave up on after 10 s may"
        " still have made an order). Backlog (orders created with a 201, not yet picked up, from their timestamps)"
        " and pickup latency each second are in the spike plot, with fulfillment's consumer lag on order-events"
        " sampled live once a second: the order service's outbox publishes an order's event only after its"
        " relay finds it, so a backlog there does not show as lag.",
        "",
        f"## 4. Ceiling: the order service's sidecar alone ({scale.ceiling_seconds} s per rate)",
        "",
        f"Per operation a `POST /v1.0/state/{CEILING_STATE_STORE}` of a ~1 KB value (unique keys, prefix"
        f" `{CEILING_KEY_PREFIX}`, deleted afterwards) and a `POST /v1.0/publish/{CEILING_PUBSUB}/{CEILING_TOPIC}`"
        f" of it, straight to 127.0.0.1:{APPS[0].dapr_http_port}. **Highest rate sustained with P95 <="
        f" {CEILING_P95_LIMIT_MS:.0f} ms: {ceiling_highest}. Stopped:"
        f" {ceiling_stop}.**",
        "",
        "| operations/s | answers | state write p50 / p95 / p99 (ms) | publish p50 / p95 / p99 (ms) | verdict |",
        "|---|---|---|---|---|",
    ]
    for ceiling_step in ceiling:
        w, b = ceiling_step.state_ms, ceiling_step.publish_ms
        lines.append(
            f"| {ceiling_step.rate} | {answers(ceiling_step.status_codes)} | {w['p50']} / {w['p95']} / {w['p99']} |"
            f" {b['p50']} / {b['p95']} / {b['p99']} | {ceiling_step.failure() or 'pass'} |"
        )
    lines += ["", "## Plots", ""] + [f"![{plot.stem}]({plot.name})" for plot in plots] + [""]
    return "\n".join(lines)


def parse_arguments() -> tuple[Scale, bool]:
    """The scale of the run (the full defaults, or --quick's, each overridable) and whether it is --quick."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every part shortened (about 5 minutes), for trying it")
    parser.add_argument("--steady-rate", type=int)
    parser.add_argument("--steady-seconds", type=int)
    parser.add_argument("--step-rates", type=int, nargs="+", help="the capacity search's rates, in order")
    parser.add_argument("--step-seconds", type=int)
    parser.add_argument("--spike-rate", type=int)
    parser.add_argument("--spike-seconds", type=int)
    parser.add_argument("--ceiling-rates", type=int, nargs="+", help="operations (write + publish) per second")
    parser.add_argument("--ceiling-seconds", type=int)
    parser.add_argument("--budget-seconds", type=int, help="how long the whole run may take, about")
    arguments = parser.parse_args()
    defaults = QUICK if arguments.quick else FULL
    return Scale(
        **{name: getattr(arguments, name) or getattr(defaults, name) for name in vars(defaults)}
    ), arguments.quick


def main() -> None:
    scale, quick = parse_arguments()
    command = f"uv run --frozen python bench/capacity.py {shlex.join(sys.argv[1:])}".strip()
    started = datetime.now(UTC)
    progress = Progress()
    layout = Layout.discover()
    vegeta = vegeta_binary()
    admin = kafka.admin_client()
    stack = Stack(layout, progress=progress)
    stack.start()
    try:
        with tempfile.TemporaryDirectory() as workdir_name:
            workdir = Path(workdir_name)
            progress(f"warm-up: {scale.steady_rate}/s for {WARM_UP_SECONDS} s")
            warm_up = attack(vegeta, scale.steady_rate, WARM_UP_SECONDS, workdir)
            wait_until_settled(admin, created_order_ids(warm_up))
            progress(f"steady: {scale.steady_rate}/s for {scale.steady_seconds} s")
            steady = measure_orders(vegeta, scale.steady_rate, scale.steady_seconds, workdir, admin)
            progress(f"steady: {describe(steady)}")
            capacity, capacity_stop = search_capacity(vegeta, scale, workdir, admin, progress)
            progress(f"capacity: stopped, {capacity_stop}")
            ceiling, ceiling_stop = measure_ceiling(vegeta, scale, workdir, progress)
            progress(f"ceiling: stopped, {ceiling_stop}")
            progress(f"spike (last: its backlog may outlast the run): {scale.spike_rate}/s for {scale.spike_seconds} s")
            settle_timeout = max(SETTLE_TIMEOUT_S, scale.budget_seconds - progress.elapsed() - READ_BACK_TIMEOUT_S)
            spike = measure_spike(vegeta, scale, workdir, admin, settle_timeout)
            progress(f"spike: {describe(spike.step)}, backlog gone {spike.step.drain_seconds} s after it")
    finally:
        stack.stop()
    results_dir = BENCH_DIR / "results"
    results_dir.mkdir(exist_ok=True)
    name = f"{started:%Y-%m-%d}-capacity{'-quick' if quick else ''}"
    plots = [results_dir / f"{name}-latency.png", results_dir / f"{name}-spike.png"]
    plot_capacity(capacity, plots[0])
    plot_spike(spike, scale.spike_seconds, plots[1])
    output = results_dir / f"{name}.md"
    output.write_text(report(layout=layout, command=command, started=started, scale=scale, steady=steady,
                             capacity=capacity, capacity_stop=capacity_stop, spike=spike, ceiling=ceiling,
                             ceiling_stop=ceiling_stop, plots=plots))  # fmt: skip
    progress(f"written: {output}, {', '.join(str(plot) for plot in plots)}")


if __name__ == "__main__":
    main()
