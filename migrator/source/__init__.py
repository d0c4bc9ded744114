"""The source side: the openai SDK client behind the request path, and pagination with loop guards."""

from migrator.http import RateLimiter
from migrator.source.client import NotFound, Rejected, RequestStats, SourceClient, SourceSettings
from migrator.source.paging import Listing, PageAnomaly, collect
from migrator.source.sunset import RouteMissing

__all__ = [
    "Listing",
    "NotFound",
    "PageAnomaly",
    "RateLimiter",
    "Rejected",
    "RouteMissing",
    "RequestStats",
    "SourceClient",
    "SourceSettings",
    "collect",
]
