"""Who may request and approve fixes: the catalog's [access].approvers, user ids or usergroup ids
(S…) expanded through Slack and cached in Redis. A group that cannot be expanded grants nothing."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable

from ..catalog import Access

log = logging.getLogger(__name__)
GROUP_CACHE_S = 600
_KEY = "syncbot:usergroup:{}"


class Approvers:
    def __init__(self, access: Access, redis: Any, expand: Callable[[str], list[str]] | None = None):
        self._users = {a for a in access.approvers if not a.startswith("S")}
        self._groups = [a for a in access.approvers if a.startswith("S")]
        self._redis, self._expand = redis, expand

    def allows(self, user: str) -> bool:
        return user in self._users or any(user in self._members(group) for group in self._groups)

    def among(self, user: str, ids: tuple[str, ...]) -> bool:
        """Whether `user` is one of `ids` (user ids, or usergroup ids expanded and cached as approvers'
        are): a table's owners, for instance."""
        return user in ids or any(user in self._members(group) for group in ids if group.startswith("S"))

    @property
    def ids(self) -> tuple[str, ...]:
        """Who to ask: user ids, then usergroup ids (S…), as the catalog lists them."""
        return (*sorted(self._users), *self._groups)

    def _members(self, group: str) -> set[str]:
        cached = self._redis.get(_KEY.format(group))
        if cached is not None:
            return set(json.loads(cached))
        if self._expand is None:
            return set()
        try:
            members = list(self._expand(group))
        except Exception as exc:  # noqa: BLE001 - fail closed: an unknown group approves nobody
            log.warning("could not expand usergroup %s: %s", group, type(exc).__name__)
            return set()
        self._redis.set(_KEY.format(group), json.dumps(members), ex=GROUP_CACHE_S)
        return set(members)
