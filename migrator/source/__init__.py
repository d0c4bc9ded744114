"""The source side: openai SDK client, pagination with loop guards, rate limiter, retry policy."""

from migrator.source.client import (
    NotFound,
    Rejected,
    RequestStats,
    SourceClient,
    SourceSettings,
    TransientError,
)
from migrator.source.paging import Listing, PageAnomaly, collect
from migrator.source.ratelimit import RateLimiter

__all__ = [
    "Listing",
    "NotFound",
    "PageAnomaly",
    "RateLimiter",
    "Rejected",
    "RequestStats",
    "SourceClient",
    "SourceSettings",
    "TransientError",
    "collect",
]
