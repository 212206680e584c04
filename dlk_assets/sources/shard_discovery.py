"""Which shards a streamed source holds that are not registered yet (pure; sensors and the demo use it)."""

from __future__ import annotations

from typing import Protocol

from dlk_assets.sources.shards import shard_index, shard_key


class ShardedStream(Protocol):
    def has_shard(self, index: int, shard_size: int) -> bool: ...


def next_shard_index(registered: list[str]) -> int:
    """The first shard index after every registered shard."""
    return max((shard_index(key) + 1 for key in registered), default=0)


def new_shard_keys(stream: ShardedStream, shard_size: int, start: int, limit: int) -> list[str]:
    """Up to `limit` shard keys from index `start` on, stopping at the first shard the source lacks."""
    keys = []
    for index in range(start, start + limit):
        if not stream.has_shard(index, shard_size):
            break
        keys.append(shard_key(index))
    return keys
