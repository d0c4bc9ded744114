"""The source side: the openai SDK client behind the request path, and pagination with loop guards."""

from migrator.lazy import lazy_attributes
from migrator.source.paging import Listing, PageAnomaly, collect
from migrator.source.settings import DEFAULT_MAX_BODY_MB, SourceSettings

# The client (the openai SDK and the request path, 50 MB a process) is imported when first named, so
# that what only holds the settings starts without it.
_CLIENT = {
    "NotFound": "migrator.source.client",
    "Rejected": "migrator.source.client",
    "SizeMismatch": "migrator.source.client",
    "SourceClient": "migrator.source.client",
    "TooLarge": "migrator.source.client",
    "RouteMissing": "migrator.source.sunset",
    "RateLimiter": "migrator.http",
    "RequestStats": "migrator.http",
}
__getattr__ = lazy_attributes(__name__, _CLIENT)


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
