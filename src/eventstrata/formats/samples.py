"""Realistic sample events in each of the five formats (~600 bytes of JSON each). Pure.

Used by the benchmark, the ``make run`` demo, the CLI and the tests. Deterministic: the same
``random.Random`` state and arguments give the same event, so a dataset is reproducible from a
seed. Every sample normalizes to an ``Event`` (with its headers) and renders back to itself.

``sample_event(rng, fmt, tenant, user_id, ts_ms)`` returns ``(object, headers)``: the JSON
object a producer would publish and the Kafka headers it would set, as text
(``encode_headers`` turns them into aiokafka's ``[(name, bytes)]``). Headers always carry
``es-format`` and ``es-tenant`` (ThisData and event-store shapes have no tenant field) and, for
the event-store shape, ``es-store`` (``accounts`` for ``user-*`` streams, ``orders`` for
``order-*``).
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from eventstrata.formats.common import vendor_time
from eventstrata.model import FORMATS
from eventstrata.timeutil import format_ms

_LOREM = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim",
    "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco",
)

_UAS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
_UA_INFO = (
    ("Chrome", "Macintosh", "OS X 10.15.7", False, [124, 0, 0, 0]),
    ("Edge", "Windows", "Windows 10", False, [131, 0, 0, 0]),
    ("Safari", "iPhone", "iOS 17.5", True, [17, 5]),
    ("Firefox", "Linux", "Linux x86_64", False, [133, 0]),
)
_CITIES = (
    ("New Zealand", "NZ", "Auckland", "AUK", "Auckland", "1010", "Pacific/Auckland", -36.8485, 174.7633),
    ("Germany", "DE", "Berlin", "BE", "Berlin", "10115", "Europe/Berlin", 52.52, 13.405),
    ("France", "FR", "Île-de-France", "IDF", "Paris", "75001", "Europe/Paris", 48.8566, 2.3522),
    ("United States", "US", "California", "CA", "San Francisco", "94103", "America/Los_Angeles",
     37.7749, -122.4194),
    ("Japan", "JP", "Tokyo", "13", "Tokyo", "100-0001", "Asia/Tokyo", 35.6762, 139.6503),
)
_FIRST = ("Eve", "Ana", "Bob", "Chen", "Dara", "Femi", "Goran", "Hana", "Ivo", "Jun", "Kai", "Lea")
_LAST = ("Smith", "Okafor", "Müller", "Tanaka", "Rossi", "Novak", "Silva", "Haddad", "Berg", "Kim")

_NATIVE_TYPES = (
    ("page_view", "Viewed Page"), ("click", "Clicked"), ("search", "Searched"),
    ("add_to_cart", "Added to Cart"), ("purchase", "Purchased"), ("login", "Logged In"),
    ("signup", "Signed Up"), ("share", "Shared"), ("download", "Downloaded"),
)
_TRIEVE_TYPES = (
    ("view", "Viewed Home Page"), ("click", "Clicked"), ("add_to_cart", "Added to Cart"),
    ("purchase", "Purchased"), ("filter_clicked", "Filter Clicked"), ("followup_query", "Followup Query"),
)
_THISDATA_VERBS = (
    "log-in", "log-in", "log-in-denied", "log-out", "page-view", "password-reset-request",
    "email-update", "two-factor-success",
)
_FT_NAMES = (
    "khub.search", "khub.document.display", "khub.topic.display", "khub.document.download",
    "khub.bookmark.create", "khub.feedback.send",
)
_FT_ROLES = (
    "PERSONAL_BOOK_SHARE_USER", "PDF_EXPORT_USER", "PERSONAL_BOOK_USER", "OFFLINE_USER", "FEEDBACK_USER",
    "ANALYTICS_USER", "RATING_USER", "GENERATIVE_AI_USER", "PRINT_USER", "COLLECTION_USER",
)
_FT_GROUPS = ("ft:authenticated", "TechWriter", "nda_basic", "nda_advanced", "support", "partners")
_ES_USER_TYPES = ("user.created", "user.updated", "user.email_changed", "user.logged_in")
_ES_ORDER_TYPES = ("order.placed", "order.paid", "order.shipped", "order.cancelled", "cart.item_added")
_SOURCES = ("web", "ios", "android", "api")
_CURRENCIES = ("EUR", "USD", "GBP", "JPY")


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_LOREM) for _ in range(n))


def _ip(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _person(user_id: str) -> str:
    h = sum(map(ord, user_id))
    return f"{_FIRST[h % len(_FIRST)]} {_LAST[(h // 7) % len(_LAST)]}"


def _native(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    etype, name = rng.choice(_NATIVE_TYPES)
    return {
        "id": _uuid(rng),
        "tenant": tenant,
        "type": etype,
        "name": name,
        "user_id": user_id,
        "timestamp": format_ms(ts_ms) if rng.random() < 0.5 else ts_ms,
        "source": rng.choice(_SOURCES),
        "session_id": _uuid(rng),
        "is_conversion": etype == "purchase",
        "items": [f"sku-{rng.randrange(100000):05d}" for _ in range(rng.randrange(1, 4))],
        "user": {
            "realm": [rng.choice(("internal", "customers"))],
            "groups": [rng.choice(_FT_GROUPS)],
            "roles": [rng.choice(_FT_ROLES)],
        },
        "data": {
            "path": f"/catalog/{rng.randrange(500)}/item/{rng.randrange(100000)}",
            "referrer": rng.choice(("https://www.google.com/", "https://news.example.org/", None)),
            "price": round(rng.uniform(1, 500), 2),
            "currency": rng.choice(_CURRENCIES),
        },
        "metadata": {"ip": _ip(rng), "user_agent": rng.choice(_UAS)},
    }


def _trieve(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    etype, name = rng.choice(_TRIEVE_TYPES)
    created = vendor_time(ts_ms)
    return {
        "id": _uuid(rng),
        "created_at": created,
        "dataset_id": tenant,
        "event_name": name,
        "event_type": etype,
        "is_conversion": etype in ("purchase", "add_to_cart"),
        "items": [
            f'{{"chunk_id":"{_uuid(rng)}","position":{i}}}' for i in range(rng.randrange(1, 4))
        ],
        "metadata": {
            "page": f"/search?q={rng.choice(_LOREM)}+{rng.choice(_LOREM)}",
            "experiment": rng.choice(("control", "variant-a", "variant-b")),
            "note": _words(rng, 5),
        },
        "request_id": _uuid(rng),
        "request_type": rng.choice(("search", "rag", "recommendation", None)),
        "updated_at": created,
        "user_id": user_id,
    }


def _thisdata(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    verb = rng.choice(_THISDATA_VERBS)
    k = rng.randrange(len(_UAS))
    browser, platform, os_name, mobile, _version = _UA_INFO[k]
    country, iso, region, _region_iso, city, _postal, tz, _lat, _lon = rng.choice(_CITIES)
    ip = _ip(rng)
    event: dict[str, Any] = {
        "published": format_ms(ts_ms),
        "verb": verb,
        "device": {
            "user_agent": _UAS[k],
            "browser": browser,
            "platform": platform,
            "os": os_name,
            "mobile": mobile,
            "bot": False,
        },
        "location": {
            "ip": ip,
            "address": {
                "country_name": country,
                "country_iso_code": iso,
                "region_name": region,
                "city_name": city,
                "timezone": tz,
            },
        },
        "session": {"id": _hex(rng, 16)} if rng.random() < 0.7 else None,
        "overall_score": round(rng.random(), 2),
        "id": "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
                      for _ in range(20)),
        "user": {"name": _person(user_id), "id": user_id},
        "raw": {"ip": ip, "verb": verb},
    }
    if rng.random() < 0.5:
        event["source_name"] = rng.choice(("web-portal", "mobile-app", "admin-console"))
    return event


def _fluidtopics(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    name = rng.choice(_FT_NAMES)
    params: dict[str, Any]
    if name == "khub.search":
        params = {
            "searchQuery": {
                "terms": _words(rng, 3),
                "searchType": rng.choice(("EVERYWHERE", "DOCUMENTS", "TOPICS")),
            },
            "searchResponse": {"autocorrect": False, "nbResults": rng.randrange(5000)},
        }
    else:
        params = {"map": {"id": _hex(rng, 22), "title": _words(rng, 2).title()}, "topicId": _hex(rng, 22)}
    return {
        "appName": "ft/turnkey-portal",
        "appVersion": f"4.{rng.randrange(2, 5)}.{rng.randrange(40)}",
        "contentLocale": rng.choice(("en-US", "fr-FR", "de-DE")),
        "datetime": ts_ms,
        "id": _uuid(rng),
        "name": name,
        "offline": rng.random() < 0.05,
        "parameters": params,
        "sessionId": _uuid(rng),
        "tenantId": tenant,
        "uiLocale": rng.choice(("en-US", "fr-FR", "de-DE")),
        "user": {
            "realm": [rng.choice(("internal", "Keycloak"))],
            "groups": [rng.choice(_FT_GROUPS)],
            "id": user_id,
            "roles": rng.sample(_FT_ROLES, 2),
        },
        "userAgent": rng.choice(_UAS),
        "userIp": _ip(rng),
    }


def _eventstore(rng: random.Random, tenant: str, user_id: str, ts_ms: int) -> dict[str, Any]:
    if rng.random() < 0.4:
        etype = rng.choice(_ES_USER_TYPES)
        stream = f"user-{user_id}"
        data: dict[str, Any] = {
            "userId": user_id,
            "email": f"{user_id.lower()}@example.com",
            "displayName": _person(user_id),
            "plan": rng.choice(("free", "pro", "enterprise")),
            "note": _words(rng, 10),
        }
    else:
        etype = rng.choice(_ES_ORDER_TYPES)
        order = rng.randrange(1_000_000)
        stream = f"order-{order}"
        data = {
            "orderId": str(order),
            "userId": user_id,
            "total": round(rng.uniform(5, 900), 2),
            "currency": rng.choice(_CURRENCIES),
            "lines": [
                {"sku": f"sku-{rng.randrange(100000):05d}", "qty": rng.randrange(1, 4)}
                for _ in range(rng.randrange(1, 4))
            ],
            "shipping": {"country": rng.choice(_CITIES)[1], "method": rng.choice(("standard", "express"))},
        }
    return {
        "streamId": stream,
        "eventId": f"evt_{_hex(rng, 24)}",
        "type": etype,
        "data": data,
        "metadata": {
            "correlationId": _uuid(rng),
            "causationId": f"evt_{_hex(rng, 24)}",
            "userId": user_id,
            "producer": rng.choice(("checkout-service", "account-service", "backoffice")),
            "traceparent": f"00-{_hex(rng, 32)}-{_hex(rng, 16)}-01",
        },
        "schemaVersion": "1.0.0",
        "transactionId": f"tx_{_hex(rng, 16)}",
        "createdAt": vendor_time(ts_ms),
    }


_MAKERS = {
    "native": _native,
    "trieve": _trieve,
    "thisdata": _thisdata,
    "fluidtopics": _fluidtopics,
    "eventstore": _eventstore,
}


def sample_event(
    rng: random.Random, fmt: str, tenant: str, user_id: str, ts_ms: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """One realistic event of format ``fmt`` for ``tenant``/``user_id`` at ``ts_ms``, and the
    headers to publish it with (see module docstring). Raises ``ValueError`` for an unknown
    format name. Advances ``rng``."""
    maker = _MAKERS.get(fmt)
    if maker is None:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    obj = maker(rng, tenant, user_id, ts_ms)
    headers = {"es-format": fmt, "es-tenant": tenant}
    if fmt == "eventstore":
        headers["es-store"] = "accounts" if obj["streamId"].startswith("user-") else "orders"
    return obj, headers


def encode_headers(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    """Text headers → Kafka headers (``[(name, UTF-8 bytes)]``)."""
    return [(k, v.encode()) for k, v in headers.items()]
