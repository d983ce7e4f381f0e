"""What both apps' readiness asks: does the state store answer (through the sidecar)? Each app adds its own
conditions (the order service: publishing; both: dead letters, service_runtime/dead_letters.py)."""

import logging
from abc import ABC, abstractmethod

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError

logger = logging.getLogger(__name__)

READINESS_PROBE_KEY = "readiness-probe"
"""Read, never written: a read of an absent key still goes through the store."""


class AbstractStateStoreProbe(ABC):
    @abstractmethod
    async def answers(self) -> bool:
        """The state store answered a read."""


class DaprStateStoreProbe(AbstractStateStoreProbe):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def answers(self) -> bool:
        try:
            await self._client.get_state(self._store, READINESS_PROBE_KEY)
        except DaprInternalError as error:
            logger.warning("state store not usable", extra={"error": str(error)})
            return False
        return True
