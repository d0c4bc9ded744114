"""Azure AI Foundry's own tools: agent definitions, run-step tool calls, MCP activities and approvals.

Shapes follow `azure-ai-agents.2025-05-01.json` and its `2025-05-15-preview` sibling (ToolDefinition and
RunStepToolCall subtypes, RunStepActivityDetails, SubmitToolApprovalAction). `computer_use_preview` is in
neither spec; its call follows the SDKs' RunStepComputerUseToolCall (`action`, `pending_safety_checks`,
`output`). Every call carries a payload a migration must keep: the call's same-named object (string
values, "reserved for future use" in the spec) or, for `mcp`, the fields directly on the call.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from migrator.sandbox import media

Obj = dict[str, Any]

# In the order an agent lists them; `browser_automation` is the preview spec's, beyond the list.
TOOL_TYPES = (
    "bing_grounding",
    "bing_custom_search",
    "azure_ai_search",
    "sharepoint_grounding",
    "fabric_dataagent",
    "openapi",
    "azure_function",
    "connected_agent",
    "deep_research",
    "mcp",
    "computer_use_preview",
    "browser_automation",
)
URL_CITED = ("bing_grounding", "bing_custom_search", "deep_research")  # answers that cite web pages
MCP_LABEL = "github"
MCP_URL = "https://api.githubcopilot.com/mcp/"
MCP_TOOLS = {
    "search_issues": ("Search issues of a repository.", {"q": "Search query", "repo": "owner/name"}),
    "get_issue": ("Get one issue by number.", {"repo": "owner/name", "number": "Issue number"}),
    "create_issue": ("Open a new issue.", {"repo": "owner/name", "title": "Title", "body": "Body"}),
}
MCP_NEEDS_APPROVAL = "create_issue"
_SUBSCRIPTION = "6f1c2a4e-93b1-4f0a-9d55-0c7e2b9a1d38"
QUERIES = (
    "acme blender return policy 2024",
    "acme express shipping iceland",
    "acme warranty outside EU",
    "acme app android logout fix",
    "SPRING24 discount code terms",
)
PAGES = (
    ("https://www.acme.example/help/returns", "Returns & refunds | Acme Help"),
    ("https://www.acme.example/help/shipping", "Shipping times and costs | Acme"),
    ("https://community.acme.example/t/android-logout/4411", "App keeps logging me out - Acme Community"),
    ("https://www.acme.example/legal/warranty", "Warranty terms | Acme"),
)


def connection(name: str) -> str:
    return (
        f"/subscriptions/{_SUBSCRIPTION}/resourceGroups/rg-support/providers/Microsoft.CognitiveServices/"
        f"accounts/acme-ai/projects/acme-support/connections/{name}"
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def definition(tool: str, *, connected_agent: str) -> Obj:
    """The ToolDefinition an agent (and its runs) declares for `tool`."""
    if tool == "bing_grounding":
        configs = [{"connection_id": connection("bing"), "market": "en-US", "set_lang": "en", "count": 5}]
        return {"type": tool, tool: {"search_configurations": configs}}
    if tool == "bing_custom_search":
        configs = [
            {"connection_id": connection("bing-custom"), "instance_name": "acme-help-sites", "count": 5}
        ]
        return {"type": tool, tool: {"search_configurations": configs}}
    if tool == "azure_ai_search":
        return {"type": tool}  # the index lives in tool_resources.azure_ai_search
    if tool in ("sharepoint_grounding", "fabric_dataagent"):
        name = "sharepoint-policies" if tool == "sharepoint_grounding" else "fabric-orders"
        return {"type": tool, tool: {"connections": [{"connection_id": connection(name)}]}}
    if tool == "openapi":
        spec = {
            "openapi": "3.0.1",
            "info": {"title": "Acme orders", "version": "1.0"},
            "servers": [{"url": "https://orders.acme.example/api"}],
            "paths": {
                "/orders/{id}": {
                    "get": {
                        "operationId": "getOrder",
                        "parameters": [
                            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                        ],
                        "responses": {"200": {"description": "The order"}},
                    }
                }
            },
        }
        return {
            "type": tool,
            tool: {
                "name": "acme_orders",
                "description": "Reads orders from the Acme order service.",
                "spec": spec,
                "auth": {"type": "anonymous"},
            },
        }
    if tool == "azure_function":
        queue = "https://acmesupportfn.queue.core.windows.net"
        return {
            "type": tool,
            tool: {
                "function": {
                    "name": "get_store_hours",
                    "description": "Opening hours of an Acme store.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                "input_binding": {
                    "type": "storage_queue",
                    "storage_queue": {"queue_service_endpoint": queue, "queue_name": "agent-input"},
                },
                "output_binding": {
                    "type": "storage_queue",
                    "storage_queue": {"queue_service_endpoint": queue, "queue_name": "agent-output"},
                },
            },
        }
    if tool == "connected_agent":
        return {
            "type": tool,
            tool: {
                "id": connected_agent,
                "name": "billing_specialist",
                "description": "Answers invoice and refund questions.",
            },
        }
    if tool == "deep_research":
        return {
            "type": tool,
            tool: {
                "deep_research_model": "o3-deep-research",
                "bing_grounding_connections": [{"connection_id": connection("bing")}],
            },
        }
    if tool == "mcp":  # MCPToolDefinition: the fields sit on the definition itself
        return {
            "type": tool,
            "server_label": MCP_LABEL,
            "server_url": MCP_URL,
            "allowed_tools": list(MCP_TOOLS),
        }
    if tool == "computer_use_preview":
        return {"type": tool, tool: {"display_width": 1026, "display_height": 769, "environment": "browser"}}
    if tool == "browser_automation":
        return {"type": tool, tool: {"connection": {"id": connection("playwright")}}}
    raise ValueError(f"unknown Foundry tool {tool!r}")


def resources(tools: tuple[str, ...]) -> Obj:
    """The tool_resources entries some of these tools need (an index, the MCP server's settings)."""
    out: Obj = {}
    if "azure_ai_search" in tools:
        out["azure_ai_search"] = {
            "indexes": [
                {
                    "index_connection_id": connection("search"),
                    "index_name": "kb-articles",
                    "query_type": "semantic",
                    "top_k": 5,
                }
            ]
        }
    if "mcp" in tools:
        out["mcp"] = [
            {
                "server_label": MCP_LABEL,
                "headers": {"x-acme-tenant": "support"},
                "require_approval": {
                    "never": {"tool_names": [t for t in MCP_TOOLS if t != MCP_NEEDS_APPROVAL]},
                    "always": {"tool_names": [MCP_NEEDS_APPROVAL]},
                },
            }
        ]
    return out


def _screenshot(rng: random.Random) -> str:
    png = media.png(4, 3, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def call(tool: str, rng: random.Random, call_id: str, *, ids: dict[str, str]) -> Obj:
    """One run-step tool call of type `tool` with its payload; `ids` names a sub-thread, run and agent."""
    query = rng.choice(QUERIES)
    url, title = rng.choice(PAGES)
    out: Obj = {"id": call_id, "type": tool}
    if tool in ("bing_grounding", "bing_custom_search"):
        search = "custom/search" if tool == "bing_custom_search" else "search"
        extra = "&customConfig=acme-help-sites" if tool == "bing_custom_search" else ""
        used = rng.randint(1, 4)
        out[tool] = {
            "requesturl": f"https://api.bing.microsoft.com/v7.0/{search}?q={query.replace(' ', '+')}{extra}",
            "response_metadata": _dumps(
                {"market": "en-US", "num_docs_retrieved": 5, "num_docs_actually_used": used}
            ),
        }
    elif tool in ("azure_ai_search", "sharepoint_grounding", "fabric_dataagent"):
        if tool == "azure_ai_search":
            result: Any = [{"title": title, "url": url, "score": round(rng.uniform(2, 9), 3)}]
        elif tool == "sharepoint_grounding":
            result = {
                "documents": [f"https://acme.sharepoint.com/sites/support/Policies/{rng.randint(1, 40)}.docx"]
            }
        else:
            result = {"rows": [["north", rng.randint(10, 99)], ["south", rng.randint(10, 99)]]}
        out[tool] = {"input": query, "output": _dumps(result)}
    elif tool == "openapi":
        order = f"A{rng.randint(100000, 999999)}"
        state = rng.choice(["shipped", "processing"])
        out[tool] = {
            "name": "acme_orders_getOrder",
            "arguments": _dumps({"id": order}),
            "output": _dumps({"id": order, "status": state}),
        }
    elif tool == "azure_function":
        city = rng.choice(["Dublin", "Amsterdam", "Berlin"])
        out[tool] = {
            "name": "get_store_hours",
            "arguments": _dumps({"city": city}),
            "output": _dumps({"city": city, "open": "09:00", "close": "18:00"}),
        }
    elif tool == "connected_agent":
        out[tool] = {
            "name": "billing_specialist",
            "arguments": _dumps({"query": "Was the customer charged twice?"}),
            "output": rng.choice(
                ["Yes: the duplicate charge was refunded.", "No duplicate charge was found."]
            ),
            "run_id": ids["run"],
            "thread_id": ids["thread"],
            "assistant_id": ids["agent"],
        }
    elif tool == "deep_research":
        out[tool] = {
            "input": _dumps({"prompt": f"Research: {query}"}),
            "output": f"Summary of 5 sources on {query!r}; the most relevant is {url}.",
        }
    elif tool == "mcp":
        name = rng.choice([t for t in MCP_TOOLS if t != MCP_NEEDS_APPROVAL])
        args = (
            {"q": "is:open logout", "repo": "acme/app"}
            if name == "search_issues"
            else {"repo": "acme/app", "number": rng.randint(1, 900)}
        )
        out.update(
            name=name,
            arguments=_dumps(args),
            output=_dumps(
                {"total_count": rng.randint(0, 9)} if name == "search_issues" else {"state": "open"}
            ),
            server_label=MCP_LABEL,
        )
    elif tool == "computer_use_preview":
        out[tool] = {
            "action": {"type": "type", "text": query},
            "pending_safety_checks": [],
            "output": {"type": "computer_screenshot", "image_url": _screenshot(rng)},
        }
    elif tool == "browser_automation":
        out[tool] = {
            "input": _dumps({"task": f"Find '{query}' on acme.example"}),
            "output": f"Found the page {url}.",
            "steps": [
                {
                    "last_step_result": "Opened acme.example",
                    "current_state": "home page",
                    "next_step": "search",
                },
                {
                    "last_step_result": f"Searched for {query}",
                    "current_state": "results",
                    "next_step": "done",
                },
            ],
        }
    else:
        raise ValueError(f"unknown Foundry tool {tool!r}")
    return out


def list_tools(activity_id: str) -> Obj:
    """The `mcp_list_tools` activity a run records before it calls an MCP server."""
    tools = {
        name: {
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {p: {"type": "string", "description": d} for p, d in params.items()},
                "required": list(params),
                "additionalProperties": False,
            },
        }
        for name, (description, params) in MCP_TOOLS.items()
    }
    return {"type": "mcp_list_tools", "id": activity_id, "server_label": MCP_LABEL, "tools": tools}


def approval(rng: random.Random, call_id: str) -> Obj:
    """The RequiredMcpToolCall a run waits on when the MCP tool needs the user's approval."""
    args = {
        "repo": "acme/app",
        "title": "Customer reports logout loop",
        "body": f"Seen {rng.randint(2, 30)} times.",
    }
    return {
        "id": call_id,
        "type": "mcp",
        "name": MCP_NEEDS_APPROVAL,
        "arguments": _dumps(args),
        "server_label": MCP_LABEL,
    }


def answer(tool: str, rng: random.Random) -> tuple[str, list[Obj]]:
    """The final answer after a call of `tool`: web tools cite their page with a url_citation."""
    if tool not in URL_CITED:
        return rng.choice(
            [
                "I've checked our systems: here is what I found.",
                "According to the records I looked up, everything is in order.",
                "I found the details you asked for.",
            ]
        ), []
    url, title = rng.choice(PAGES)
    value = "Here is what the help centre says"
    marker = "【3:0†source】"
    annotation = {
        "type": "url_citation",
        "text": marker,
        "start_index": len(value),
        "end_index": len(value) + len(marker),
        "url_citation": {"url": url, "title": title},
    }
    return value + marker + ".", [annotation]


def payload(tool_call: Obj) -> Obj:
    """What a migration must keep of a call: its same-named object, or the fields on the call (mcp)."""
    kind = tool_call["type"]
    inner = tool_call.get(kind)
    if isinstance(inner, dict):
        return inner
    return {k: v for k, v in tool_call.items() if k not in ("id", "type")}
