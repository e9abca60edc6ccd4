"""Identity-management facts: OAuth 2.0 / OIDC token requests and the identity claims of JWTs.

Only what helps correlate a user across systems is kept (issuer, subject, MC service IDs, client id);
tokens, codes, verifiers and secrets are read and dropped. A JWT is decoded without checking its
signature: the claims are evidence of who asked, not proof.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import unquote_plus

from analyzer.meaning.mcfacts.common import first, values
from analyzer.meaning.mcfacts.records import TokenClaims, TokenRequest
from analyzer.meaning.mcfacts.xcap import request_target
from analyzer.messages.records import Message

_MAX_TOKEN = 16384
_MAX_FORM = 65536
_MAX_FIELDS = 100
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_CLAIMS = ("iss", "sub", "client_id", "mcptt_id", "mcvideo_id", "mcdata_id")


def jwt_claims(token: str | None) -> TokenClaims | None:
    """The identity claims of a JWS compact token (``header.payload.signature``), or None when it is not
    one (opaque token, JWE, bad base64 or JSON). Never raises."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    pieces = token.strip().split(".")
    if len(pieces) != 3:
        return None
    header, payload = _json_object(pieces[0]), _json_object(pieces[1])
    if header is None or payload is None or not isinstance(header.get("alg"), str):
        return None
    found = {name: v for name in _CLAIMS if isinstance(v := payload.get(name), str)}
    if "client_id" not in found and isinstance(payload.get("azp"), str):
        found["client_id"] = payload["azp"]
    return TokenClaims(**found)


def _json_object(piece: str) -> dict | None:
    if not piece or not _B64URL.fullmatch(piece):
        return None
    try:
        data = base64.urlsafe_b64decode(piece.rstrip("=") + "=" * (-len(piece.rstrip("=")) % 4))
        obj = json.loads(data)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def bearer_token_claims(message: Message) -> TokenClaims | None:
    """Identity claims of the ``Authorization: Bearer <JWT>`` a message carries (HTTP or SIP), or None
    (no bearer token, or one that is not a readable JWT)."""
    for value in values(message.headers, "authorization"):
        scheme, _, credentials = value.strip().partition(" ")
        if scheme.lower() == "bearer":
            claims = jwt_claims(credentials.strip())
            if claims is not None:
                return claims
    return None


#: Form fields a token request may show; everything else (code, code_verifier, refresh_token,
#: client_secret, client_assertion, password…) is never read into a record.
_KEPT_FIELDS = frozenset({"grant_type", "client_id", "scope"})


def token_request(message: Message) -> TokenRequest | None:
    """An OAuth/OIDC token-endpoint request: a POST whose form body has ``grant_type``, or any request to a
    path ending in ``/token``. Returns the grant type, client id and scopes, never secrets; else None."""
    if message.proto != "http" or message.kind != "request":
        return None
    host, path, _ = request_target(message)
    form = _form(message) if (message.method or "").upper() == "POST" else {}
    if "grant_type" not in form and not path.lower().rstrip("/").endswith("/token"):
        return None
    scope = tuple(form.get("scope", "").split())
    return TokenRequest(host, path, form.get("grant_type") or None, form.get("client_id") or None, scope)


def _form(message: Message) -> dict[str, str]:
    ctype = (first(message.headers, "content-type") or "").lower()
    if ctype and "x-www-form-urlencoded" not in ctype:
        return {}
    body = message.body[:_MAX_FORM]
    if not body or b"=" not in body:
        return {}
    text = body.decode("latin-1")
    out: dict[str, str] = {}
    for pair in text.split("&", _MAX_FIELDS)[:_MAX_FIELDS]:
        name, _, val = pair.partition("=")
        name = unquote_plus(name).strip()
        if name in _KEPT_FIELDS and name not in out:
            out[name] = unquote_plus(val).strip()
    return out
