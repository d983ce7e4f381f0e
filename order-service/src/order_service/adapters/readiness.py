"""Readiness: can this service accept orders right now? It can while the sidecar and the state store answer;
publishing (the broker) does not decide it, since accepted orders wait in the outbox, but while it fails the
service says it is `degraded`, and why. So it does once it has dead-lettered an event (service_runtime/dead_letters.py):
the orders are still accepted, but an event was set aside that someone has to look at."""

from datetime import datetime
from typing import Literal

from dapr.aio.clients import DaprClient
from pydantic import BaseModel
from service_runtime.dead_letters import DeadLetterTally
from service_runtime.readiness import DaprStateStoreProbe

from order_service.relay import RelayStatus


class Readiness(BaseModel):
    ready: bool
    status: Literal["ok", "degraded", "unavailable"]
    degraded_reason: str | None = None
    state_store: str
    event_publishing: str
    events_owed: int
    last_publish_error: str | None
    publishing_failing_since: datetime | None = None
    dead_letters: int = 0
    """Events this process dead-lettered since it started."""
    last_dead_letter_at: datetime | None = None


class DaprStateReadiness:
    def __init__(
        self, client: DaprClient, store_name: str, relay_status: RelayStatus, dead_letters: DeadLetterTally
    ) -> None:
        self._store = DaprStateStoreProbe(client, store_name)
        self._relay = relay_status
        self._dead_letters = dead_letters

    async def check(self) -> Readiness:
        store = "ok" if await self._store.answers() else "unavailable"
        return readiness_of(store, self._relay, self._dead_letters)


def readiness_of(store: str, relay: RelayStatus, dead_letters: DeadLetterTally) -> Readiness:
    failing = relay.publishing != "ok"
    reasons = [f"events are not being published: {relay.last_error}"] if failing else []
    if (dead_lettered := dead_letters.degraded_reason()) is not None:
        reasons.append(dead_lettered)
    return Readiness(
        ready=store == "ok",
        status="unavailable" if store != "ok" else "degraded" if reasons else "ok",
        degraded_reason="; ".join(reasons) or None,
        state_store=store,
        event_publishing=relay.publishing,
        events_owed=relay.owed,
        last_publish_error=relay.last_error,
        publishing_failing_since=relay.failing_since,
        dead_letters=dead_letters.dead_lettered,
        last_dead_letter_at=dead_letters.last_at,
    )
