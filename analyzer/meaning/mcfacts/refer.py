"""REFER over a pre-established session (TS 24.379 cl. 6.3.3; RFC 3515, RFC 4488, RFC 4538): what it asks.

A client with a pre-established session makes a call by sending REFER: the ``Refer-To`` URI names the group
or the called user, and the MC information travels as URI headers of it (RFC 3261 §19.1.1: ``?hname=value``,
``body`` for a body, ``Content-Type`` for its type — all percent-encoded) or, referenced by ``cid:``, in the
REFER's own body. ``method=BYE`` in the Refer-To URI releases the call. ``Target-Dialog`` (RFC 4538) names
the pre-established session the REFER is about, when it is sent outside that dialog.

Linear and bounded: at most ``_MAX_HEADERS`` URI headers are read, each split once; bodies are percent-decoded
once; a header value longer than the message is impossible, so everything is bounded by the message size.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from analyzer.meaning.mcfacts.bodies import mc_info, recipients
from analyzer.meaning.mcfacts.common import Problems, first, parse_params, split_unquoted
from analyzer.meaning.mcfacts.records import McInfo, Uri
from analyzer.meaning.mcfacts.uri import uri_parts
from analyzer.messages.records import Headers, Message

_MAX_HEADERS = 32  # URI headers read from one Refer-To (a real one has two or three)


@dataclass(frozen=True, slots=True)
class ReferTo:
    """One ``Refer-To`` value: the target ``uri`` (its URI headers dropped), the ``method`` URI parameter
    (upper case; ``BYE`` releases the call), the embedded ``body`` and its ``content_type`` (from the
    ``body`` and ``Content-Type`` URI headers, percent-decoded), and the other URI headers (lower-case
    name, decoded value)."""

    uri: Uri | None
    method: str | None = None
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


@dataclass(frozen=True, slots=True)
class TargetDialog:
    """A ``Target-Dialog`` value (RFC 4538): the Call-ID of the dialog a request is about, and its tags."""

    call_id: str
    local_tag: str | None = None
    remote_tag: str | None = None


def refer_to(message: Message) -> ReferTo | None:
    """The ``Refer-To`` of a SIP request (long or compact ``r``), taken apart; None when there is none."""
    if message.proto != "sip" or message.kind != "request":
        return None
    value = first(message.headers, "refer-to")
    if not value or not value.strip():
        return None
    value = value.strip()
    lt = value.find("<")
    if lt >= 0:  # name-addr: the URI may carry headers (?…) only inside angle brackets
        gt = value.find(">", lt)
        inner = value[lt + 1:gt] if gt >= 0 else value[lt + 1:]
    else:
        inner = value.partition(";")[0]  # addr-spec: what follows ';' are header parameters
    head, _, query = inner.strip().partition("?")
    uri = uri_parts(head)
    method = uri.param("method") if uri is not None else None
    body, ctype, other = b"", None, []
    for item in query.split("&", _MAX_HEADERS)[:_MAX_HEADERS] if query else ():
        name, _, raw = item.partition("=")
        name = name.strip().lower()
        if name == "body":
            body = unquote_to_bytes(raw)
        elif name in ("content-type", "c"):
            ctype = unquote_to_bytes(raw).decode("utf-8", "replace").strip() or None
        elif name:
            other.append((name, unquote_to_bytes(raw).decode("utf-8", "replace").strip()))
    return ReferTo(uri, method.strip().upper() or None if method else None, body, ctype, tuple(other))


def target_dialog(message: Message) -> TargetDialog | None:
    """The ``Target-Dialog`` header: ``call-id;local-tag=…;remote-tag=…``; None when absent or empty."""
    if message.proto != "sip":
        return None
    value = first(message.headers, "target-dialog")
    if not value:
        return None
    call_id, *rest = split_unquoted(value, ";")
    call_id = call_id.strip()
    if not call_id:
        return None
    params = dict(parse_params(";".join(rest)))
    return TargetDialog(call_id, params.get("local-tag") or None, params.get("remote-tag") or None)


def referred(message: Message, refer: ReferTo | None, problems: Problems = None
             ) -> tuple[McInfo | None, tuple[str, ...]]:
    """The MC information and recipient list of the call a REFER asks for: from the body embedded in the
    Refer-To URI, else from the REFER's own body (a ``cid:`` reference, or a client that sends it there)."""
    if refer is not None and refer.body:
        found = (("content-type", refer.content_type),
                 ("content-disposition", refer.header("content-disposition")))
        headers = Headers([(name, text) for name, text in found if text])
        embedded = Message("sip", "request", message.method, refer.uri.text if refer.uri else None, None,
                           None, headers, refer.body, message.frames, message.time, message.src,
                           message.dst, message.transport)
        info, listed = mc_info(embedded, problems), recipients(embedded, problems)
        if info is not None or listed:
            return info, listed
    return mc_info(message, problems), recipients(message, problems)
