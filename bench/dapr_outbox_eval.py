"""Dapr's built-in outbox (`outboxPublishPubsub` on a state store), tried on this project's stack: the same daprd
build, the same SQLite state store and Kafka pub/sub, with the broker up and then killed.

Starts Kafka, a stand-in app (Python's http.server: daprd only runs its subscriptions, the outbox's own included,
once its app is up) and one daprd on spare ports, and stops all three. Prints what happened:

    uv run python bench/dapr_outbox_eval.py
"""

import json
import os
import signal
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from confluent_kafka import Consumer
from devstack import kafka
from devstack.layout import Layout
from devstack.processes import start, wait_until

DAPR_HTTP = "http://127.0.0.1:3599"
TOPIC = "outbox-eval"

COMPONENTS = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: eval-pubsub}}
spec:
  type: pubsub.kafka
  version: v1
  metadata:
    - {{name: brokers, value: "127.0.0.1:9092"}}
    - {{name: authType, value: "none"}}
    - {{name: version, value: "4.0.0"}}
    - {{name: initialOffset, value: "oldest"}}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{name: eval-store}}
spec:
  type: state.sqlite
  version: v1
  metadata:
    - {{name: connectionString, value: "{database}"}}
    - {{name: outboxPublishPubsub, value: eval-pubsub}}
    - {{name: outboxPublishTopic, value: {topic}}}
"""


def transaction(key: str) -> tuple[int, float, str]:
    body = {"operations": [{"operation": "upsert", "request": {"key": key, "value": {"order": key}}}]}
    started = time.monotonic()
    try:
        response = httpx.post(f"{DAPR_HTTP}/v1.0/state/eval-store/transaction", json=body, timeout=30)
    except httpx.HTTPError as error:
        return 0, time.monotonic() - started, repr(error)
    return response.status_code, time.monotonic() - started, response.text[:300]


def published(key: str, timeout: float = 40) -> bool:
    consumer = Consumer({"bootstrap.servers": kafka.BOOTSTRAP_SERVERS, "group.id": f"eval-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "log_level": 0})  # fmt: skip
    consumer.subscribe([TOPIC])
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error() and key.encode() in (message.value() or b""):
                return True
        return False
    finally:
        consumer.close()


def stored(key: str) -> bool:
    return bool(httpx.get(f"{DAPR_HTTP}/v1.0/state/eval-store/{key}", timeout=10).content)


def main() -> None:
    layout = Layout.discover()
    with tempfile.TemporaryDirectory() as workdir:
        resources = Path(workdir) / "components"
        resources.mkdir()
        (resources / "eval.yaml").write_text(COMPONENTS.format(database=Path(workdir) / "eval.db", topic=TOPIC))
        broker = kafka.start_broker(layout)
        kafka.ensure_topics({TOPIC: 1})
        app = start("outbox-eval-app", ["python3", "-m", "http.server", "8099", "--bind", "127.0.0.1"],
                    log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=Path(workdir))  # fmt: skip
        daprd = start(
            "outbox-eval-daprd",
            [str(layout.dapr_bin / "daprd"), "--app-id", "outbox-eval", "--app-port", "8099",
             "--dapr-http-port", "3599", "--dapr-grpc-port", "50099", "--metrics-port", "9199",
             "--resources-path", str(resources), "--config", str(layout.root / "components" / "config.yaml")],
            log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=Path(workdir),
        )  # fmt: skip
        try:
            wait_until(lambda: _answers(f"{DAPR_HTTP}/v1.0/healthz/outbound"), what="daprd", timeout=60, process=daprd)
            key = f"up-{uuid.uuid4()}"
            status, seconds, text = transaction(key)
            print(json.dumps({"broker": "up", "status": status, "seconds": round(seconds, 2), "stored": stored(key),
                              "published": published(key), "answer": text}))  # fmt: skip
            os.kill(broker.pid, signal.SIGKILL)
            broker.popen.wait()
            key = f"down-{uuid.uuid4()}"
            status, seconds, text = transaction(key)
            print(json.dumps({"broker": "killed", "status": status, "seconds": round(seconds, 2),
                              "stored": stored(key), "answer": text}))  # fmt: skip
        finally:
            daprd.stop()
            app.stop()
            broker.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
