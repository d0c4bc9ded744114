"""The source side: the openai SDK client behind the request path, and pagination with loop guards."""

from migrator.http import RateLimiter
from migrator.source.client import (
    DEFAULT_MAX_BODY_MB,
    NotFound,
    Rejected,
    RequestStats,
    SizeMismatch,
    SourceClient,
    SourceSettings,
    TooLarge,
)
from migrator.source.paging import Listing, PageAnomaly, collect
from migrator.source.sunset import RouteMissing

__all__ = [
    "DEFAULT_MAX_BODY_MB",
    "SizeMismatch",
    "TooLarge",
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
