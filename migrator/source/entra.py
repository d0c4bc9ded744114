"""Microsoft Entra ID bearer tokens for an Azure AI Foundry project: FOUNDRY_TOKEN, else azure-identity.

Foundry takes no API keys. A static `FOUNDRY_TOKEN` serves CI and short runs; otherwise azure-identity's
`DefaultAzureCredential` (az login, managed identity, environment credentials) hands out tokens for
`https://ai.azure.com/.default`. A token lives about an hour and an overnight export outlives many: it
is refreshed a few minutes before its `expires_on`, and once more when the service answers 401 to the
very token we sent (revoked early, or a server that counts its life in requests). The token is handed
to the SDK per request and kept nowhere else: never in the archive, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import openai

from migrator.errors import SourceRefusedError, UsageError
from migrator.redact import register_secret

__all__ = [
    "SCOPE",
    "Credential",
    "EntraTokens",
    "default_credential",
    "foundry_tokens",
    "require_azure_identity",
]

SCOPE = "https://ai.azure.com/.default"
REFRESH_MARGIN_S = 300  # refresh this long before expires_on, as azure-identity's own providers do
INSTALL = "pip install 'migrate-assistants[azure]'"


class Credential(Protocol):
    """azure-core's TokenCredential, as far as it is used here: `get_token(scope)` gives an object with
    `token` and `expires_on` (seconds since the epoch)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


def require_azure_identity() -> None:
    """Without the optional extra, one line saying how to get it (asked before anything is created)."""
    try:
        import azure.identity  # noqa: F401
    except ImportError:
        raise UsageError(
            "--foundry-endpoint needs azure-identity for Entra ID tokens, and it is not installed",
            hint=f"{INSTALL}, or set FOUNDRY_TOKEN to a bearer token for {SCOPE}",
        ) from None


def default_credential() -> Credential:
    """azure-identity's DefaultAzureCredential (see `require_azure_identity`)."""
    require_azure_identity()
    from azure.identity import DefaultAzureCredential

    # azure-identity logs every credential it tried as a WARNING: a dozen lines on stderr before our one
    # line that says what to do (its text is kept there, in the error's reason).
    logging.getLogger("azure.identity").setLevel(logging.ERROR)
    # Interactive browser sign-in would hang an unattended export; az login covers people at a terminal.
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


class EntraTokens:
    """The SDK's `api_key` provider for Foundry and the request path's `renew` hook.

    `credential` makes a credential (called again for a forced refresh: a credential caches its token
    until near expiry, so only a fresh one asks the identity provider anew). With `static` (FOUNDRY_TOKEN)
    there is nothing to refresh: a 401 on it is the user's to fix.
    """

    def __init__(self, *, static: str | None = None, credential: Callable[[], Credential] | None = None):
        if static is None and credential is None:
            raise ValueError("a static token or a credential is needed")
        self.static = static
        self._make = credential
        self._credential: Credential | None = None
        self._token: str | None = static
        register_secret(static)  # a server that echoes the bearer never gets it into a log
        self._expires_on = float("inf") if static else 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0  # tokens asked of the credential, for the run's record (never the tokens)

    async def __call__(self) -> str:
        if self._token is None or self._expires_on - time.time() < REFRESH_MARGIN_S:
            async with self._lock:
                if self._token is None or self._expires_on - time.time() < REFRESH_MARGIN_S:
                    await self._fetch(fresh=False)
        assert self._token is not None
        return self._token

    async def renew(self, exc: openai.APIStatusError) -> bool:
        """A 401: True when a different token is now at hand (the request goes again), else False and
        the refusal stands. A 401 to a token already replaced only needs the request sent again."""
        if self._make is None:
            return False
        sent = exc.request.headers.get("authorization", "")[7:] if exc.request is not None else ""
        async with self._lock:
            if sent and sent != self._token:
                return True
            old = self._token
            await self._fetch(fresh=True)
            return self._token != old

    async def _fetch(self, *, fresh: bool) -> None:
        assert self._make is not None
        if self._credential is None or fresh:
            self._credential = self._make()
        credential = self._credential
        # get_token blocks (a process for az, an HTTP call for managed identity): off the event loop.
        try:
            access = await asyncio.to_thread(credential.get_token, SCOPE)
        except Exception as exc:  # noqa: BLE001  azure-identity raises its own ClientAuthenticationError
            raise SourceRefusedError(
                f"no Entra ID token for {SCOPE}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                hint="run az login (or configure a managed identity), or set FOUNDRY_TOKEN",
            ) from None
        self.refreshes += 1
        self._token = access.token
        register_secret(access.token)
        self._expires_on = float(access.expires_on)


def foundry_tokens(static: str | None) -> EntraTokens:
    """FOUNDRY_TOKEN's value when set, else DefaultAzureCredential (the extra must be installed)."""
    if static:
        return EntraTokens(static=static)
    require_azure_identity()
    return EntraTokens(credential=default_credential)
