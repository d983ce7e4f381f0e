"""Readiness: can this service accept orders right now? It can while the sidecar and the state store answer;
publishing (the broker) is reported but does not decide it, since accepted orders wait in the outbox."""

import logging

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from pydantic import BaseModel

from order_service.relay import RelayStatus

logger = logging.getLogger(__name__)

READINESS_PROBE_KEY = "readiness-probe"


class Readiness(BaseModel):
    ready: bool
    state_store: str
    event_publishing: str
    events_owed: int
    last_publish_error: str | None


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
        return Readiness(
            ready=store == "ok",
            state_store=store,
            event_publishing=self._relay.publishing,
            events_owed=self._relay.owed,
            last_publish_error=self._relay.last_error,
        )
