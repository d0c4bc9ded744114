"""The sandbox: a faithful fake Assistants v2 server (plus chat completions and conversations) on 127.0.0.1,
and a migration target: uploads, vector stores and the Responses API (target.py).

An independent implementation of the OpenAI spec over a deterministic synthetic corpus, with knobs
for latency, rate limits, faults and broken pagination. It imports nothing from the rest of
`migrator`, so the client and the sandbox cannot be wrong the same way. Its flavors (flavors.py) also
make it an Azure AI Foundry project, a self-hosted look-alike, or OpenAI after the Assistants sunset.

    from migrator.sandbox import SandboxConfig, SandboxServer, thread_ids
    with SandboxServer(SandboxConfig(threads=50, seed=7)) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k")
    with SandboxServer(SandboxConfig(threads=50, seed=7, flavor="foundry")) as srv:
        client = openai.OpenAI(
            base_url=srv.base_url, api_key=srv.mint_token(), default_query={"api-version": "2025-05-01"}
        )
"""

from migrator.sandbox.config import SandboxConfig
from migrator.sandbox.ids import thread_ids
from migrator.sandbox.server import SandboxServer

__all__ = ["SandboxConfig", "SandboxServer", "thread_ids"]
