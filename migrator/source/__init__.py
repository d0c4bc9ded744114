"""The source side: the openai SDK client behind the request path, and pagination with loop guards."""

from migrator.http import RateLimiter
from migrator.source.client import NotFound, Rejected, RequestStats, SourceClient, SourceSettings
from migrator.source.paging import Listing, PageAnomaly, collect

__all__ = [
    "Listing",
    "NotFound",
    "PageAnomaly",
    "RateLimiter",
    "Rejected",
    "RequestStats",
    "SourceClient",
    "SourceSettings",
    "collect",
]
