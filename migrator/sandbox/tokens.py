"""Bearer tokens for the Foundry flavor: minted ones, a configured static one, and a lifetime in requests.

`POST /_sandbox/token` mints `sbx-<n>-<signature>`, signed with a secret of this server process, so a
typo, a token of another sandbox or an API key sent as a bearer is refused. With `token_ttl_requests`
set, every token (the static one included) serves that many API requests from its first use and is
then refused as expired, which is what lets a test watch a client refresh its token mid-run without
waiting an hour.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import threading
import time
from typing import Any

TOKEN_LIFETIME_S = 3600  # what the mint endpoint reports as expires_in, like Entra ID's tokens


class TokenBook:
    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._numbers = itertools.count(1)
        self._uses: dict[str, int] = {}
        self._lock = threading.Lock()

    def _signature(self, number: str) -> str:
        return hmac.new(self._secret, number.encode(), hashlib.sha256).hexdigest()[:24]

    def mint(self, ttl_requests: int | None) -> dict[str, Any]:
        """An access-token answer shaped like Entra ID's, plus the sandbox's lifetime in requests."""
        number = str(next(self._numbers))
        expires_on = int(time.time()) + TOKEN_LIFETIME_S
        return {
            "token_type": "Bearer",
            "access_token": f"sbx-{number}-{self._signature(number)}",
            "expires_in": TOKEN_LIFETIME_S,
            "expires_on": expires_on,
            "ttl_requests": ttl_requests,
        }

    def minted(self, token: str) -> bool:
        parts = token.split("-")
        if len(parts) != 3 or parts[0] != "sbx" or not parts[1].isdigit():
            return False
        return hmac.compare_digest(parts[2].encode(), self._signature(parts[1]).encode())

    def check(self, token: str, static: str | None, ttl_requests: int | None) -> str:
        """'ok' (and the use is counted), 'expired' or 'invalid'."""
        known = self.minted(token) or (
            static is not None and hmac.compare_digest(token.encode(), static.encode())
        )
        if not known:
            return "invalid"
        with self._lock:
            used = self._uses.get(token, 0)
            if ttl_requests is not None and used >= ttl_requests:
                return "expired"
            self._uses[token] = used + 1
        return "ok"
