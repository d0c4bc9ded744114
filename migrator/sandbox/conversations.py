"""The Conversations API, in memory: create, retrieve, add items, list items.

Limits are the spec's: at most 20 items per request, metadata of at most 16 string pairs with keys
up to 64 and values up to 512 characters. Items of type message, function_call and
function_call_output are stored as the resources the spec describes (ids, status, typed content
parts); other item types are refused with a 400 naming the ones the sandbox keeps.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

import orjson

from migrator.sandbox import listing
from migrator.sandbox.errors import ApiError, bad_request
from migrator.sandbox.ids import token
from migrator.sandbox.plan import EPOCH

if TYPE_CHECKING:
    from migrator.sandbox.routes import Request, Router

Obj = dict[str, Any]
MAX_ITEMS = 20
ITEM_TYPES = "'message', 'function_call', and 'function_call_output'"


def _body(req: Request) -> Obj:
    if not req.body:
        return {}
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("Invalid type for 'body': expected an object.", None, "invalid_type")
    return body


def check_metadata(meta: Any) -> dict[str, str]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise bad_request("Invalid type for 'metadata': expected an object.", "metadata", "invalid_type")
    if len(meta) > 16:
        raise bad_request(
            "Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an "
            f"object with {len(meta)} properties instead.",
            "metadata",
            "object_above_max_properties",
        )
    for key, value in meta.items():
        if len(key) > 64:
            raise bad_request(
                f"Invalid 'metadata': key '{key[:16]}...' is too long. Expected a key with maximum length 64, but got "
                f"a key with length {len(key)} instead.",
                "metadata",
                "string_above_max_length",
            )
        if not isinstance(value, str):
            raise bad_request(
                f"Invalid type for 'metadata.{key}': expected a string, but got a {type(value).__name__} instead.",
                f"metadata.{key}",
                "invalid_type",
            )
        if len(value) > 512:
            raise bad_request(
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum length 512, but got a "
                f"string with length {len(value)} instead.",
                f"metadata.{key}",
                "string_above_max_length",
            )
    return dict(meta)


class ConversationsApi:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._conversations: dict[str, Obj] = {}
        self._items: dict[str, list[Obj]] = {}

    def register(self, router: Router) -> None:
        router.add("POST", "/v1/conversations", self.create)
        router.add("GET", "/v1/conversations/{conversation_id}", self.get)
        router.add("POST", "/v1/conversations/{conversation_id}/items", self.add_items)
        router.add("GET", "/v1/conversations/{conversation_id}/items", self.list_items)

    def _id(self, prefix: str) -> str:
        return prefix + token(self.seed, "conv", next(self._counter), length=48)

    def _items_of(self, raw: Any, where: str) -> list[Obj]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise bad_request(f"Invalid type for '{where}': expected an array.", where, "invalid_type")
        if len(raw) > MAX_ITEMS:
            raise bad_request(
                f"Invalid '{where}': array too long. Expected an array with maximum length {MAX_ITEMS}, but got an "
                f"array with length {len(raw)} instead.",
                where,
                "array_above_max_length",
            )
        return [self._item(item, f"{where}[{i}]") for i, item in enumerate(raw)]

    def _item(self, item: Any, where: str) -> Obj:
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad_request(
                    f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', 'system', and 'developer'.",
                    f"{where}.role",
                    "invalid_value",
                )
            content = item.get("content")
            if isinstance(content, str):
                part = "output_text" if role == "assistant" else "input_text"
                parts = [{"type": part, "text": content}]
            elif isinstance(content, list) and all(isinstance(p, dict) and "type" in p for p in content):
                parts = [dict(p) for p in content]
            else:
                raise bad_request(
                    f"Invalid type for '{where}.content': expected a string or an array of content parts.",
                    f"{where}.content",
                    "invalid_type",
                )
            for p in parts:
                if p["type"] == "output_text":
                    p.setdefault("annotations", [])
                    p.setdefault("logprobs", [])
                elif p["type"] == "input_image":
                    p.setdefault("detail", "auto")
            return {
                "type": "message",
                "id": self._id("msg_"),
                "status": "completed",
                "role": role,
                "content": parts,
            }
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise bad_request(
                        f"Missing required parameter: '{where}.{key}'.",
                        f"{where}.{key}",
                        "missing_required_parameter",
                    )
            return {
                "type": "function_call",
                "id": self._id("fc_"),
                "call_id": item["call_id"],
                "name": item["name"],
                "arguments": item["arguments"],
                "status": "completed",
            }
        if kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str | list):
                raise bad_request(
                    f"Missing required parameter: '{where}.call_id' and '{where}.output' are both required.",
                    where,
                    "missing_required_parameter",
                )
            return {
                "type": "function_call_output",
                "id": self._id("fco_"),
                "call_id": item["call_id"],
                "output": item["output"],
                "status": "completed",
            }
        raise bad_request(
            f"Invalid value: '{kind}'. The sandbox keeps items of type {ITEM_TYPES}.",
            f"{where}.type",
            "invalid_value",
        )

    def create(self, req: Request) -> Obj:
        body = _body(req)
        for key in body:
            if key not in ("items", "metadata"):
                raise bad_request(f"Unrecognized request argument supplied: {key}", key, "unknown_parameter")
        metadata = check_metadata(body.get("metadata"))
        with self._lock:
            items = self._items_of(body.get("items"), "items")
            conv = {
                "id": self._id("conv_"),
                "object": "conversation",
                "created_at": EPOCH + 10_000_000 + len(self._conversations),
                "metadata": metadata,
            }
            self._conversations[conv["id"]] = conv
            self._items[conv["id"]] = items
        return conv

    def _conv(self, req: Request) -> Obj:
        cid = req.params["conversation_id"]
        conv = self._conversations.get(cid)
        if conv is None:
            raise ApiError(404, f"Conversation with id '{cid}' not found.", param="conversation_id")
        return conv

    def get(self, req: Request) -> Obj:
        return self._conv(req)

    def add_items(self, req: Request) -> Obj:
        conv = self._conv(req)
        body = _body(req)
        if "items" not in body:
            raise bad_request("Missing required parameter: 'items'.", "items", "missing_required_parameter")
        with self._lock:
            items = self._items_of(body["items"], "items")
            self._items[conv["id"]].extend(items)
        return listing.envelope(items, False, None if req.cfg.null_list_ids else "")

    def list_items(self, req: Request) -> Obj:
        conv = self._conv(req)
        params = listing.parse(req.query, before=False)
        with self._lock:
            items = list(self._items[conv["id"]])
        data, has_more = listing.page(items, params)
        return listing.envelope(data, has_more, None if req.cfg.null_list_ids else "")
