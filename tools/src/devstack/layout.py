"""Where things are: the repository, its git-ignored run folder, the per-machine build cache, and every port."""

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


def _find_root() -> Path:
    configured = os.environ.get("ORDER_PLATFORM_ROOT")
    if configured:
        return Path(configured).resolve()
    for directory in (Path.cwd(), *Path.cwd().parents):
        if (directory / "dapr.yaml").is_file() and (directory / "tools" / "versions.env").is_file():
            return directory
    raise RuntimeError("not inside the order platform's repository (no dapr.yaml + tools/versions.env found)")


@dataclass(frozen=True)
class App:
    app_id: str
    app_port: int
    dapr_http_port: int
    dapr_grpc_port: int
    metrics_port: int


# The same numbers as dapr.yaml (a test checks that they agree).
APPS = (
    App("order-service", 8000, 3500, 50001, 9101),
    App("fulfillment-service", 8001, 3501, 50002, 9102),
    App("shipping-mock", 8002, 3502, 50003, 9103),
)

KAFKA_PORT = 9092
KAFKA_CONTROLLER_PORT = 9093
# The alternate state stores' servers (devstack/state_stores.py), started only for those stores.
POSTGRES_PORT = 5432
REDIS_PORT = 6379

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def discover(cls) -> "Layout":
        return cls(_find_root())

    @cached_property
    def versions(self) -> dict[str, str]:
        pairs = {}
        for line in (self.root / "tools" / "versions.env").read_text().splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                key, _, value = stripped.partition("=")
                pairs[key] = value
        return pairs

    @property
    def run_dir(self) -> Path:
        """Logs, PID files and data of a running stack (git-ignored)."""
        return self.root / ".run"

    @property
    def secrets_file(self) -> Path:
        """The stack's generated secrets (devstack.dapr.STACK_SECRETS), one `NAME=value` per line."""
        return self.run_dir / "secrets.env"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pids_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def kafka_data_dir(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def state_dir(self) -> Path:
        """SQLite files of the state stores (components/statestore-*.yaml name them relative to the root)."""
        return self.run_dir / "state"

    @property
    def dapr_bin(self) -> Path:
        """The project-local Dapr home's programs (tools/install-dapr.sh lays it out)."""
        return self.root / ".dapr" / "bin"

    @property
    def cache_dir(self) -> Path:
        configured = os.environ.get("ORDER_PLATFORM_CACHE")
        if configured:
            return Path(configured)
        return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "order-platform"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{self.versions['KAFKA_VERSION']}" / "libs"
