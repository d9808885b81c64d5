"""An archive that holds no event, for unit tests of the query engine on the hot tier alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventstrata.model import Event


class NoArchive:
    """``query.cold.ColdQuery`` of an empty archive. Nothing is archived (W = 0), so the engine
    must never ask it for a range: ``execute`` fails the test; ``cold_get`` finds nothing."""

    def execute(self, tenant: str, since_ms: int | None, until_ms: int | None, sql: str,
                params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise AssertionError(f"the archive was read at W=0: {sql}")

    def cold_get(self, tenant: str, event_id: str, ts_hint: int | None = None) -> Event | None:
        return None
