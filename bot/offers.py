"""Fix buttons carry only an opaque id; what it offers (table, action, where it was shown) lives in
Redis. A forged or tampered value finds nothing and so can do nothing."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

from .models import ActionKind

OFFER_TTL_S = 24 * 3600
_KEY = "syncbot:offer:{}"


@dataclass(frozen=True)
class Offer:
    id: str
    table: str
    action: ActionKind
    channel: str
    created_at: float


class OfferStore:
    def __init__(self, redis: Any):
        self._redis = redis

    def create(self, table: str, action: ActionKind, channel: str) -> Offer:
        offer = Offer(secrets.token_urlsafe(16), table, action, channel, time.time())
        self._redis.set(_KEY.format(offer.id), json.dumps(asdict(offer)), ex=OFFER_TTL_S)
        return offer

    def get(self, offer_id: str) -> Offer | None:
        if not isinstance(offer_id, str) or not 10 <= len(offer_id) <= 64:
            return None
        raw = self._redis.get(_KEY.format(offer_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return Offer(data["id"], data["table"], ActionKind(data["action"]), data["channel"], data["created_at"])
