"""The source side: the openai SDK client behind the request path, and pagination with loop guards."""

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


def __getattr__(name: str) -> object:
    if name in _CLIENT:
        import importlib

        return getattr(importlib.import_module(_CLIENT[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
