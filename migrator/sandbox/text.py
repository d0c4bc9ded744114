"""Words of a support deployment: what users ask, what assistants answer, what tools return.

Every user message ends with a ticket tag `(ticket INDEX-K)` naming its thread index and position,
so the chat-completions replay can find "what the assistant did next" in O(1) without an index of
the whole corpus, and no two user messages in a corpus are equal.
"""

from __future__ import annotations

import random
import re

TICKET = re.compile(r"\(ticket (\d+)-(\d+)\)\s*$")

USER_OPENERS = [
    "Hi, my order {order} still hasn't arrived.",
    "Can you check the status of order {order}?",
    "I was charged twice for {order}, please help.",
    "How do I return the blender I bought last week?",
    "What's your refund policy for opened items?",
    "The app keeps logging me out on Android.",
    "Can I change the delivery address for {order}?",
    "Do you ship to Iceland?",
    "My discount code SPRING24 doesn't work.",
    "I need an invoice for {order} for my accountant.",
    "Please cancel my subscription.",
    "Is the warranty valid outside the EU?",
]
USER_FOLLOWUPS = [
    "Thanks! And how long will that take?",
    "That didn't work, still the same error.",
    "Okay, can you escalate this?",
    "Great, one more question: do you price match?",
    "hello?? anyone there",
    "Can you send me the details by email instead?",
    "Perfect, that solved it.",
    "Could you double-check that?",
]
UNICODE = [
    "Bonjour 👋 — la commande est arrivée cassée 😞",
    "مرحبا، أريد استرجاع المبلغ من فضلك",
    "שלום, ההזמנה שלי לא הגיעה",
    "你好，我的订单还没有到。请帮我查一下。",
    "注文した商品がまだ届いていません。",
    "Family account 👨\u200d👩\u200d👧\u200d👦 needs a 4th seat",
    "Tab\tseparated\u000bvertical tab and bell\u0007 in a pasted log",
    "Zero\u200bwidth\u200cjoiners\u200d and RTL mark \u200fhere\u200e done",
    "Ünïcödé naïve café façade — ﬁne ligature, Ωmega, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "🏳️\u200d🌈 flags 🇮🇸🇯🇵 and skin tones 👍🏽👍🏿",
]
ASSISTANT_TEXTS = [
    "I've checked that for you: everything looks in order.",
    "Thanks for your patience. I've updated your request.",
    "I'm sorry about the trouble. Here is what you can do next.",
    "Your refund has been issued and should appear within 5-7 business days.",
    "I've escalated this to a specialist who will contact you within 24 hours.",
    "You can change this under Settings → Account → Delivery.",
    "Good news: your parcel is out for delivery today.",
    "Unfortunately that code expired on March 31st.",
]
INSTRUCTIONS = [
    "You are a friendly support agent for Acme Home. Be concise and always confirm order numbers.",
    "You answer billing questions for Acme Home. Never promise refunds above 500 EUR.",
    "You are the returns desk. Cite the returns policy when you quote it.",
    "You help with the Acme mobile app. Ask for the app version before troubleshooting.",
    "Tu es l'assistant du support Acme France. Réponds en français.",
    "You are a tier-2 agent. Use tools before answering anything about an order.",
]
DOC_TOPICS = [
    "Returns policy",
    "Shipping times",
    "Warranty terms",
    "Subscription billing",
    "Privacy notice",
    "App troubleshooting",
    "Price match guarantee",
    "Gift cards",
]
SENTENCES = [
    "Items can be returned within 30 days of delivery if they are unused and in their original packaging.",
    "Refunds are issued to the original payment method within 5-7 business days of receiving the return.",
    "Standard shipping takes 3-5 business days; express shipping takes 1-2 business days.",
    "The warranty covers manufacturing defects for two years from the date of purchase.",
    "Subscriptions renew automatically unless cancelled at least 24 hours before renewal.",
    "Customers outside the EU should contact the local distributor for warranty claims.",
    "Gift cards cannot be exchanged for cash and expire after three years.",
    "Price match requests must include a link to a competitor offer valid on the day of the request.",
    "Personal data is kept for as long as the account is active and deleted 90 days after closure.",
    "If the app logs you out repeatedly, clear its cache and make sure the device clock is correct.",
]


def order_number(rng: random.Random) -> str:
    return f"#{rng.randint(100000, 999999)}"


def user_text(rng: random.Random, index: int, k: int, *, first: bool, unicode: bool) -> str:
    if unicode:
        body = rng.choice(UNICODE)
    elif first:
        body = rng.choice(USER_OPENERS).format(order=order_number(rng))
    else:
        body = rng.choice(USER_FOLLOWUPS)
    return f"{body} (ticket {index}-{k})"


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(SENTENCES) for _ in range(n))
