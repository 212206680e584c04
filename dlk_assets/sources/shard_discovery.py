"""Which shards a sharded source holds that are not registered yet, and which registered shard grew
(pure; sensors and the demo use it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from dlk_assets.sources.shards import shard_index, shard_key


class ShardedStream(Protocol):
    def positions(self) -> int: ...

    def describe_size(self) -> str: ...


@dataclass(frozen=True)
class DiscoveryCursor:
    """What discovery remembers between ticks: the next shard index and how many stream positions
    the source held when it last looked (`None` for a cursor written before it was remembered)."""

    next_shard: int = 0
    positions_seen: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> DiscoveryCursor:
        if not text:
            return cls()
        if text.isdigit():  # the earlier cursor: the next shard index alone
            return cls(int(text))
        state = json.loads(text)
        return cls(int(state["next_shard"]), state.get("positions_seen"))

    def serialize(self) -> str:
        return json.dumps({"next_shard": self.next_shard, "positions_seen": self.positions_seen}, sort_keys=True)


@dataclass(frozen=True)
class Discovery:
    """New shard keys to register, a registered shard whose rows grew (to run again), the next cursor."""

    new_keys: list[str]
    grown_key: str | None
    cursor: DiscoveryCursor


def next_shard_index(registered: list[str]) -> int:
    """The first shard index after every registered shard."""
    return max((shard_index(key) + 1 for key in registered), default=0)


def discover_shards(registered: list[str], cursor: DiscoveryCursor, positions: int, shard_size: int,
                    limit: int) -> Discovery:
    """Up to `limit` new shards of a source holding `positions` items, from the cursor on.

    The last registered shard may have been registered partial (the source ended inside it); when
    the source has grown into it since, that shard is named as grown so it runs again — otherwise
    its new rows would never be ingested.
    """
    start = max(cursor.next_shard, next_shard_index(registered))
    end = min(start + limit, -(-positions // shard_size))
    new_keys = [shard_key(index) for index in range(start, end)]
    seen = cursor.positions_seen
    grown = None
    if start > 0 and seen is not None and seen < start * shard_size and positions > seen:
        grown = shard_key(start - 1)
    return Discovery(new_keys, grown, DiscoveryCursor(max(start, end), positions))
