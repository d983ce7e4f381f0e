"""Readiness: can this service store orders right now? Asks the sidecar to read from the state store."""

import logging

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError

logger = logging.getLogger(__name__)

READINESS_PROBE_KEY = "readiness-probe"


class DaprStateReadiness:
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def check(self) -> bool:
        try:
            await self._client.get_state(self._store, READINESS_PROBE_KEY)
        except DaprInternalError as error:
            logger.warning("state store not usable", extra={"error": str(error)})
            return False
        return True
