"""Reading order-events back with a plain Kafka consumer: what is really on the topic, keys included."""

import json
import uuid
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from devstack.kafka import BOOTSTRAP_SERVERS

from tests.support.polling import eventually

TOPIC = "order-events"


def consumer_at_end(topic: str = TOPIC) -> Consumer:
    """A consumer positioned at the current end of every partition of `topic`: it sees only new messages."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP_SERVERS,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    positions = []
    for partition in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        positions.append(TopicPartition(topic, partition, high))
    consumer.assign(positions)
    return consumer


def next_message_about(consumer: Consumer, order_id: str, event_type: str) -> tuple[bytes | None, dict[str, Any]]:
    key, event, _ = next_record_about(consumer, order_id, event_type)
    return key, event


def next_record_about(
    consumer: Consumer, order_id: str, event_type: str
) -> tuple[bytes | None, dict[str, Any], tuple[int, int]]:
    """The next message on the topic that is a CloudEvent of `event_type` about `order_id`: its key, the event and
    (partition, offset). Anything else on the topic (other orders, other types, poison) is passed over."""

    def probe() -> tuple[bytes | None, dict[str, Any], tuple[int, int]] | None:
        message = consumer.poll(0.2)
        if message is None or message.error():
            return None
        try:
            event = json.loads(message.value() or b"")
        except ValueError:
            return None
        if isinstance(event, dict) and event.get("subject") == order_id and event.get("type") == event_type:
            return message.key(), event, (message.partition() or 0, message.offset() or 0)
        return None

    return eventually(probe, timeout=10, interval=0, what=f"{event_type} for {order_id} on order-events")


def wait_until_group_consumed(group: str, topic: str, partition: int, offset: int, timeout: float = 15) -> None:
    """Until consumer group `group` has committed past `offset` on the partition: it has handled that message."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})

    def committed_past() -> bool:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])
        [future] = admin.list_consumer_group_offsets([request]).values()
        [position] = future.result(timeout=10).topic_partitions
        return bool(position.offset > offset)

    eventually(committed_past, timeout=timeout, what=f"{group} to consume {topic}[{partition}]@{offset}")
