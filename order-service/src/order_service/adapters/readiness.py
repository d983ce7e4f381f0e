"""Readiness: can this service accept orders right now? It can while the sidecar and the state store answer;
publishing (the broker) does not decide it, since accepted orders wait in the outbox, but while it fails the
service says it is `degraded`, and why."""

import logging
from datetime import datetime
from typing import Literal

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from pydantic import BaseModel

from order_service.relay import RelayStatus

logger = logging.getLogger(__name__)

READINESS_PROBE_KEY = "readiness-probe"


class Readiness(BaseModel):
    ready: bool
    status: Literal["ok", "degraded", "unavailable"]
    degraded_reason: str | None = None
    state_store: str
    event_publishing: str
    events_owed: int
    last_publish_error: str | None
    publishing_failing_since: datetime | None = None


class DaprStateReadiness:
    def __init__(self, client: DaprClient, store_name: str, relay_status: RelayStatus) -> None:
        self._client = client
        self._store = store_name
        self._relay = relay_status

    async def check(self) -> Readiness:
        try:
            await self._client.get_state(self._store, READINESS_PROBE_KEY)
            store = "ok"
        except DaprInternalError as error:
            logger.warning("state store not usable", extra={"error": str(error)})
            store = "unavailable"
        failing = self._relay.publishing != "ok"
        return Readiness(
            ready=store == "ok",
            status="unavailable" if store != "ok" else "degraded" if failing else "ok",
            degraded_reason=f"events are not being published: {self._relay.last_error}" if failing else None,
            state_store=store,
            event_publishing=self._relay.publishing,
            events_owed=self._relay.owed,
            last_publish_error=self._relay.last_error,
            publishing_failing_since=self._relay.failing_since,
        )
