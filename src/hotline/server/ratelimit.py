"""Token-bucket rate limits, per device and per client address (in-process)."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.wire.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key. ``check`` takes one token or raises :class:`RateLimited`."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str, now: float) -> None:
        """Raises: RateLimited with ``retry_after`` seconds in ``extra``."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            retry = (1 - bucket.tokens) / self.rate
            raise RateLimited(f"too many requests; retry in {retry:.1f} s", retry_after=retry)
        bucket.tokens -= 1

    def _evict_full(self, now: float) -> None:
        # Buckets that have refilled carry no state worth keeping.
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in full or list(self._buckets)[: self.max_keys // 10]:
            del self._buckets[key]
