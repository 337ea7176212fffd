"""Who reacts to domain changes, wired once per process (the API's resources, the worker's
runtime): the one place a new reaction to "a task or category changed" plugs in."""

from __future__ import annotations

from collections.abc import Sequence

from common.cache import ResponseCache
from common.db.changes import CategoryChanged, DomainChange, TaskChanged
from common.db.uow import Subscribers
from common.sync.feed import record_in_feed
from common.webhooks.events import write_deliveries


def change_subscribers(cache: ResponseCache) -> Subscribers:
    async def invalidate_cached_reads(changes: Sequence[DomainChange]) -> None:
        """A changed task or category makes the owner's cached pages stale: one generation
        bump per owner, after the commit (a reader must not cache the old rows again)."""
        owners = {c.user_id for c in changes if isinstance(c, TaskChanged | CategoryChanged)}
        for user_id in owners:
            await cache.invalidate(user_id)

    return Subscribers(
        in_transaction=[record_in_feed, write_deliveries],
        after_commit=[invalidate_cached_reads],
    )
