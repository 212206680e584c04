"""Which videos the source lists that were never registered (pure; the sensor and the demo use it)."""

from __future__ import annotations

import json


def seen_from_cursor(cursor: str | None) -> set[str]:
    """The video ids a sensor cursor says were already registered (a JSON list)."""
    if not cursor:
        return set()
    value = json.loads(cursor)
    if not isinstance(value, list):
        raise ValueError(f"video sensor cursor is not a JSON list: {cursor[:80]!r}")  # noqa: TRY004 (bad stored text)
    return {str(v) for v in value}


def new_video_ids(listed: list[str], registered: set[str], seen: set[str], limit: int) -> list[str]:
    """Up to `limit` listed ids, in listing order, that are neither registered nor seen before.

    Seen ids stay seen: a partition deleted in the UI is not registered again behind the user's back.
    """
    return [video_id for video_id in listed if video_id not in registered and video_id not in seen][:limit]


def cursor_for(seen: set[str], registered: set[str], added: list[str]) -> str:
    return json.dumps(sorted(seen | registered | set(added)))
