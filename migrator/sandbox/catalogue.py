"""Function tools a support deployment declares, with argument and output generators.

Names all match `^[a-zA-Z0-9_-]{1,64}$` (one uses a hyphen); a few are `strict` and therefore
follow strict-mode rules (every property required, `additionalProperties: false`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Function:
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool
    arguments: Callable[[random.Random], dict[str, Any]]
    output: Callable[[random.Random, dict[str, Any]], dict[str, Any]]

    def tool(self) -> dict[str, Any]:
        fn: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }
        if self.strict:
            fn["strict"] = True
        return {"type": "function", "function": fn}


def _obj(props: dict[str, Any], required: list[str] | None = None, strict: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    schema["required"] = list(props) if strict else (required or [])
    if strict:
        schema["additionalProperties"] = False
    return schema


def _order(rng: random.Random) -> str:
    return f"A{rng.randint(100000, 999999)}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


FUNCTIONS: list[Function] = [
    Function(
        "lookup_order",
        "Look up an order by its number.",
        _obj({"order_id": {"type": "string", "description": "Order number, e.g. A123456"}}, ["order_id"]),
        False,
        lambda r: {"order_id": _order(r)},
        lambda r, a: {"order_id": a["order_id"], "status": r.choice(["shipped", "processing", "delivered"])},
    ),
    Function(
        "get_shipping_status",
        "Tracking status of a parcel.",
        _obj(
            {"tracking_number": {"type": "string"}, "carrier": {"type": "string", "enum": ["dhl", "ups"]}},
            strict=True,
        ),
        True,
        lambda r: {
            "tracking_number": f"1Z{r.randint(10**9, 10**10 - 1)}",
            "carrier": r.choice(["dhl", "ups"]),
        },
        lambda r, a: {"status": r.choice(["in_transit", "out_for_delivery"]), "eta_days": r.randint(0, 4)},
    ),
    Function(
        "refund_payment",
        "Refund part or all of a payment.",
        _obj(
            {
                "order_id": {"type": "string"},
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
                "reason": {"type": "string"},
            },
            ["order_id", "amount"],
        ),
        False,
        lambda r: {
            "order_id": _order(r),
            "amount": round(r.uniform(5, 400), 2),
            "currency": r.choice(["EUR", "USD"]),
        },
        lambda r, a: {
            "refund_id": f"re_{r.randint(10**6, 10**7)}",
            "amount": a["amount"],
            "state": "pending",
        },
    ),
    Function(
        "create_ticket",
        "Open a ticket for the human support team.",
        _obj(
            {
                "subject": {"type": "string"},
                "priority": {"type": "string", "enum": ["low", "normal", "urgent"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            strict=True,
        ),
        True,
        lambda r: {
            "subject": "Customer needs help",
            "priority": r.choice(["low", "normal", "urgent"]),
            "tags": ["chat"],
        },
        lambda r, a: {"ticket_id": r.randint(10000, 99999), "queue": "tier2"},
    ),
    Function(
        "search_kb",
        "Search the help-centre articles.",
        _obj({"query": {"type": "string"}, "top_k": {"type": "integer", "default": 3}}, ["query"]),
        False,
        lambda r: {
            "query": r.choice(["return window", "express shipping", "warranty claim", "reset password"])
        },
        lambda r, a: {"articles": [{"id": r.randint(100, 999), "title": a["query"].title()}]},
    ),
    Function(
        "fetch-invoice",
        "Fetch the PDF invoice link of an order.",
        _obj({"order_id": {"type": "string"}}, ["order_id"]),
        False,
        lambda r: {"order_id": _order(r)},
        lambda r, a: {"url": f"https://billing.example.com/invoices/{a['order_id']}.pdf"},
    ),
    Function(
        "get_account_balance",
        "Store-credit balance of the current customer.",
        _obj({}),
        False,
        lambda r: {},
        lambda r, a: {"balance": round(r.uniform(0, 120), 2), "currency": "EUR"},
    ),
    Function(
        "schedule_callback",
        "Book a phone callback.",
        _obj(
            {
                "phone": {"type": "string"},
                "when": {"type": "string", "format": "date-time"},
                "language": {"type": ["string", "null"]},
            },
            strict=True,
        ),
        True,
        lambda r: {
            "phone": f"+3531{r.randint(1000000, 9999999)}",
            "when": "2024-05-02T10:30:00Z",
            "language": None,
        },
        lambda r, a: {"confirmed": True},
    ),
    Function(
        "check_inventory",
        "Stock level of a product in a warehouse.",
        _obj(
            {
                "sku": {"type": "string"},
                "warehouse": {"type": "string", "enum": ["DUB", "AMS", "BER"]},
                "options": {"type": "object", "properties": {"colour": {"type": "string"}}},
            },
            ["sku"],
        ),
        False,
        lambda r: {
            "sku": f"SKU-{r.randint(1000, 9999)}",
            "warehouse": r.choice(["DUB", "AMS"]),
            "options": {"colour": "rød 🟥"},
        },
        lambda r, a: {"in_stock": r.randint(0, 40)},
    ),
    Function(
        "translate_text",
        "Translate a customer's message to English.",
        _obj({"text": {"type": "string"}, "source_language": {"type": "string"}}, ["text"]),
        False,
        lambda r: {
            "text": r.choice(["¿Dónde está mi pedido?", "Wo ist meine Bestellung?", "我的订单在哪里？"])
        },
        lambda r, a: {"translation": "Where is my order?"},
    ),
]

# Declared only by run-level overrides, never by an assistant: the converter must take the union.
OVERRIDE_FUNCTION = Function(
    "apply_goodwill_credit",
    "Grant a one-off goodwill credit (run-level override only).",
    _obj({"amount": {"type": "number"}, "note": {"type": "string"}}, ["amount"]),
    False,
    lambda r: {"amount": r.choice([5, 10, 15]), "note": "sorry for the delay"},
    lambda r, a: {"credited": a["amount"]},
)

BY_NAME: dict[str, Function] = {f.name: f for f in [*FUNCTIONS, OVERRIDE_FUNCTION]}


def call(rng: random.Random, fn: Function) -> tuple[str, str]:
    """(arguments, output) as the JSON strings a run step carries."""
    args = fn.arguments(rng)
    return _dumps(args), _dumps(fn.output(rng, args))
