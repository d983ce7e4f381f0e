"""Fault injection: the settings an operator (or a test) changes at run time, and the dice.

Each carrier call rolls every rate independently, in a fixed order (error, reject, timeout),
so a seeded ``random.Random`` gives the same sequence of faults for the same sequence of
calls. What each fault does to an answer is decided in ``shipping_mock.api.carrier``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class FaultSettings(BaseModel):
    """The fault knobs; every omitted field takes its default (no fault)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(default=0, ge=0, description="Added to every carrier answer.")
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of calls answered 503 before any change.")
    timeout_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of calls whose answer is withheld after the change is stored."
    )
    reject_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of new shipments rejected with 422 (remembered per key)."
    )
    down: bool = Field(default=False, description="Every carrier call is answered 503.")


@dataclass(frozen=True, slots=True)
class FaultRoll:
    """What the dice said for one carrier call, together with the settings they were rolled against."""

    down: bool
    latency_ms: int
    error: bool
    reject: bool
    timeout: bool


class FaultInjector:
    """Holds the current fault settings and rolls them for each carrier call."""

    def __init__(self, seed: int | None) -> None:
        self._random = random.Random(seed)
        self._settings = FaultSettings()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def replace(self, settings: FaultSettings) -> None:
        self._settings = settings

    def reset(self) -> None:
        self._settings = FaultSettings()

    def roll(self) -> FaultRoll:
        """Roll every rate once (always all of them, so the sequence does not depend on the path taken)."""
        settings = self._settings
        error = self._random.random() < settings.error_rate
        reject = self._random.random() < settings.reject_rate
        timeout = self._random.random() < settings.timeout_rate
        return FaultRoll(
            down=settings.down, latency_ms=settings.latency_ms, error=error, reject=reject, timeout=timeout
        )
