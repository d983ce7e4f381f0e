"""Apache Kafka in KRaft mode (one combined broker + controller) on loopback, from the jars tools/install-kafka.sh
collects. Ready when the broker answers an AdminClient call, never after a sleep."""

import socket
import subprocess
import time

from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.layout import KAFKA_PORT, LOOPBACK, Layout
from devstack.processes import ManagedProcess, start, wait_until

BOOTSTRAP_SERVERS = f"{LOOPBACK}:{KAFKA_PORT}"
HEAP = ["-Xms256m", "-Xmx512m", "-XX:+UseSerialGC"]

TOPICS = {"order-events": 6, "order-events-dlq": 6, "fulfillment-events": 6, "fulfillment-events-dlq": 6}
"""Topics and partition counts. One order's events share a key (the order id), hence a partition and an order."""
TOPIC_CONFIGS = {
    "order-events-dlq": {"retention.ms": "-1"},
    "fulfillment-events-dlq": {"retention.ms": "-1"},
}
"""A dead letter is kept until it is replayed and an operator deletes it: under the broker's default retention (7
days) one not replayed in time would be gone, and its order with it."""


def admin_client() -> AdminClient:
    # log_level 0: librdkafka would print every refused connection while the broker starts.
    return AdminClient({"bootstrap.servers": BOOTSTRAP_SERVERS, "socket.timeout.ms": 2000, "log_level": 0})


def broker_answers() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if probe.connect_ex((LOOPBACK, KAFKA_PORT)) != 0:
            return False
    try:
        admin_client().list_topics(timeout=1)
    except Exception:
        return False
    return True


def _java(layout: Layout, main_class: str, *args: str) -> list[str]:
    log4j = layout.root / "tools" / "kafka" / "log4j2.yaml"
    return ["java", *HEAP, "-cp", f"{layout.kafka_libs}/*", f"-Dlog4j2.configurationFile={log4j}", main_class, *args]


def format_storage(layout: Layout) -> None:
    """Format the log directory once (KRaft storage needs a cluster id and meta.properties before first start)."""
    data_dir = layout.kafka_data_dir
    if (data_dir / "meta.properties").is_file():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    # StorageTool takes no --override: give it the server properties plus log.dirs in a file of its own.
    format_properties = layout.run_dir / "kafka-format.properties"
    server_properties = (layout.root / "tools" / "kafka" / "server.properties").read_text()
    format_properties.write_text(f"{server_properties}\nlog.dirs={data_dir}\n")
    cluster_id = subprocess.run(
        _java(layout, "kafka.tools.StorageTool", "random-uuid"), check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        _java(
            layout,
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(format_properties),
        ),
        check=True,
        capture_output=True,
    )


def start_broker(layout: Layout, timeout: float = 60.0) -> ManagedProcess:
    format_storage(layout)
    command = _java(
        layout,
        "kafka.Kafka",
        str(layout.root / "tools" / "kafka" / "server.properties"),
        "--override",
        f"log.dirs={layout.kafka_data_dir}",
    )
    broker = start("kafka", command, log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=layout.root)
    wait_until(broker_answers, what=f"Kafka at {BOOTSTRAP_SERVERS}", timeout=timeout, process=broker)
    return broker


def consumer_group_members(groups: tuple[str, ...], timeout: float = 30.0) -> dict[str, set[str]]:
    """The member ids each consumer group has now (an unknown group has none). Right after the broker starts its
    group coordinator is still loading (a retriable error): asked again until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        admin = admin_client()  # held until the futures resolve: they never do once their client is collected
        described = admin.describe_consumer_groups(list(groups), request_timeout=5)
        try:
            return {
                group: {member.member_id for member in future.result(timeout=10).members}
                for group, future in described.items()
            }
        except KafkaException as error:
            if not _coordinator_not_ready(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def groups_consuming(topic_by_group: dict[str, str], *, stale_members: dict[str, set[str]]) -> bool:
    """True when every group is stable, with all of its topic's partitions assigned to members that joined after
    `stale_members` was taken: a sidecar's subscription is really receiving, not waiting out a rebalance."""
    admin = admin_client()  # held until the futures resolve: they never do once their client is collected
    partitions = {
        topic: len(admin.list_topics(topic, timeout=5).topics[topic].partitions)
        for topic in set(topic_by_group.values())
    }
    described = admin.describe_consumer_groups(list(topic_by_group), request_timeout=5)
    for group, future in described.items():
        topic = topic_by_group[group]
        try:
            description = future.result(timeout=10)
        except KafkaException as error:
            if _coordinator_not_ready(error):
                return False
            raise
        members = {member.member_id for member in description.members}
        assigned = sum(
            1
            for member in description.members
            for assignment in member.assignment.topic_partitions
            if assignment.topic == topic
        )
        if (
            description.state != ConsumerGroupState.STABLE
            or not members
            or members & stale_members.get(group, set())
            or assigned != partitions[topic]
        ):
            return False
    return True


_COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        # The request itself timed out: on a fresh broker the first group request creates __consumer_offsets (50
        # partitions), which on two busy cores took longer than the request timeout (stack start, 2026-12-03).
        KafkaError._TIMED_OUT,
    }
)


def _coordinator_not_ready(error: KafkaException) -> bool:
    """The broker is up but its group coordinator is still loading: ask again (librdkafka does not flag these
    as retriable on admin calls)."""
    kafka_error: KafkaError = error.args[0]
    return kafka_error.retriable() or kafka_error.code() in _COORDINATOR_NOT_READY


def ensure_topics(topics: dict[str, int] = TOPICS) -> None:
    admin = admin_client()
    existing = set(admin.list_topics(timeout=5).topics)
    missing = [NewTopic(name, num_partitions=count, config=TOPIC_CONFIGS.get(name, {}))
               for name, count in topics.items() if name not in existing]  # fmt: skip
    for future in admin.create_topics(missing, operation_timeout=10).values() if missing else ():
        future.result(timeout=15)
