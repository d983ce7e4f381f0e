"""Readiness from what the state store, the relay and the dead letters say (adapters/readiness.py)."""

from datetime import UTC, datetime

from order_service.adapters.readiness import readiness_of
from order_service.relay import RelayStatus
from service_runtime.dead_letters import DeadLetterTally

TOPIC = "fulfillment-events-dlq"


def test_ok_while_the_store_answers_events_are_published_and_nothing_was_dead_lettered() -> None:
    readiness = readiness_of("ok", RelayStatus(), DeadLetterTally(topic=TOPIC))

    assert (readiness.ready, readiness.status, readiness.degraded_reason) == (True, "ok", None)
    assert (readiness.dead_letters, readiness.last_dead_letter_at) == (0, None)


def test_a_dead_letter_leaves_it_ready_but_degraded_and_says_where() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    tally.record()

    readiness = readiness_of("ok", RelayStatus(), tally)

    assert (readiness.ready, readiness.status, readiness.dead_letters) == (True, "degraded", 1)
    assert readiness.degraded_reason is not None
    assert f"1 event(s) dead-lettered to {TOPIC}" in readiness.degraded_reason
    assert readiness.last_dead_letter_at == tally.last_at


def test_publishing_failing_and_dead_letters_are_both_given_as_reasons() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    tally.record()
    relay = RelayStatus(owed=3, publishing="failing", last_error="broker down", failing_since=datetime.now(UTC))

    readiness = readiness_of("ok", relay, tally)

    assert readiness.status == "degraded"
    assert readiness.degraded_reason is not None
    assert readiness.degraded_reason.startswith("events are not being published: broker down; 1 event(s) dead-lettered")


def test_unavailable_without_the_store_whatever_else() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    tally.record()

    readiness = readiness_of("unavailable", RelayStatus(), tally)

    assert (readiness.ready, readiness.status) == (False, "unavailable")
