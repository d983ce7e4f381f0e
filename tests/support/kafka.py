"""Reading the topics back with a plain Kafka consumer: what is really on them, keys included."""

import json
import uuid
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from devstack.kafka import BOOTSTRAP_SERVERS

from tests.support.polling import eventually


def _consumer() -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": BOOTSTRAP_SERVERS,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )


def _ends(consumer: Consumer, topic: str) -> dict[int, int]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {
        partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        for partition in partitions
    }


def _event_about(message: Message, order_id: str) -> dict[str, Any] | None:
    """The message's CloudEvent if it is one about `order_id`."""
    try:
        event = json.loads(message.value() or b"")
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("subject") == order_id else None


def consumer_at_end(topic: str) -> Consumer:
    """A consumer positioned at the current end of every partition of `topic`: it sees only new messages."""
    consumer = _consumer()
    consumer.assign([TopicPartition(topic, partition, end) for partition, end in _ends(consumer, topic).items()])
    return consumer


def end_offsets(topic: str) -> dict[int, int]:
    """Where each partition of `topic` ends now: the offset its next message will get."""
    consumer = _consumer()
    try:
        return _ends(consumer, topic)
    finally:
        consumer.close()


def event_types_about(topic: str, order_id: str, *, since: dict[int, int]) -> list[str]:
    """The types of the CloudEvents about `order_id` on `topic` from `since` (see `end_offsets`) up to where its
    partitions end now."""
    consumer = _consumer()
    try:
        ends = _ends(consumer, topic)
        next_offsets = {partition: since[partition] for partition, end in ends.items() if end > since[partition]}
        consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in next_offsets.items()])
        types: list[str] = []

        def read_to_the_end() -> bool:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                next_offsets[message.partition() or 0] = (message.offset() or 0) + 1
                event = _event_about(message, order_id)
                if event is not None:
                    types.append(str(event.get("type")))
            return all(offset >= ends[partition] for partition, offset in next_offsets.items())

        eventually(read_to_the_end, timeout=10, interval=0, what=f"{topic} read up to {ends}")
        return types
    finally:
        consumer.close()


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
        event = _event_about(message, order_id)
        if event is not None and event.get("type") == event_type:
            return message.key(), event, (message.partition() or 0, message.offset() or 0)
        return None

    topics = sorted({partition.topic for partition in consumer.assignment()})
    return eventually(probe, timeout=10, interval=0, what=f"{event_type} for {order_id} on {topics}")


def wait_until_group_consumed(group: str, topic: str, partition: int, offset: int, timeout: float = 15) -> None:
    """Until consumer group `group` has committed past `offset` on the partition: it has handled that message."""
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})

    def committed_past() -> bool:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])
        [future] = admin.list_consumer_group_offsets([request]).values()
        [position] = future.result(timeout=10).topic_partitions
        return bool(position.offset > offset)

    eventually(committed_past, timeout=timeout, what=f"{group} to consume {topic}[{partition}]@{offset}")


def values_since(topic: str, since: dict[int, int], timeout: float = 60) -> list[bytes]:
    """The value of every message on `topic` from `since` (see `end_offsets`; a partition it lacks from its start)
    up to where its partitions end now."""
    consumer = _consumer()
    try:
        ends = _ends(consumer, topic)
        next_offsets = {partition: since.get(partition, 0) for partition, end in ends.items()
                        if end > since.get(partition, 0)}  # fmt: skip
        if not next_offsets:
            return []
        consumer.assign([TopicPartition(topic, partition, offset) for partition, offset in next_offsets.items()])
        values: list[bytes] = []

        def read_to_the_end() -> bool:
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if not message.error():
                    next_offsets[message.partition() or 0] = (message.offset() or 0) + 1
                    values.append(message.value() or b"")
            return all(offset >= ends[partition] for partition, offset in next_offsets.items())

        eventually(read_to_the_end, timeout=timeout, interval=0, what=f"{topic} read up to {ends}")
        return values
    finally:
        consumer.close()
