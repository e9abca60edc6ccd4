"""MC facts read from message bodies: mc*-info, affiliation pidf / commands, poc-settings, recipient lists.

Bodies are split and parsed only when one of these functions is called. Every element is found by local
name (any namespace, any prefix, or none), and 3GPP contentType wrappers are unwrapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

from analyzer.meaning.mcfacts.common import (
    Problems,
    event_package,
    find_media,
    first,
    parts,
    read_xml,
    service_of_media,
    service_of_namespace,
    to_int,
)
from analyzer.meaning.mcfacts.headers import mc_service
from analyzer.meaning.mcfacts.records import SERVICES, AffiliationSet, AffiliationStatus, McInfo, PocSettings
from analyzer.meaning.mcfacts.tokens import jwt_claims
from analyzer.messages.multipart import BodyPart
from analyzer.messages.records import Message
from analyzer.messages.xml import attr, find, findall, local_name, value

# --- mc*-info -----------------------------------------------------------------------------------------

_INFO_TYPE = re.compile(r"application/vnd\.3gpp\.(mcptt|mcvideo|mcdata)-info\+xml$")
_SERVICE_PREFIX = re.compile(r"^(?:mcptt|mcvideo|mcdata|mc)-")

#: ``<service>-Params`` child (local name, service prefix removed, lower case) → McInfo field. Elements not
#: listed are ignored, as the media type registrations require for unknown elements.
_INFO_FIELDS: dict[str, str] = {
    "session-type": "session_type",
    "request-type": "request_type",
    "request-uri": "request_uri",
    "calling-user-id": "calling_user_id",
    "calling-user-identity": "calling_user_id",
    "called-party-id": "called_party_id",
    "calling-group-id": "calling_group_id",
    "associated-group-id": "associated_group_id",
    "client-id": "client_id",
    "originated-by": "originated_by",
    "emergency-ind": "emergency",
    "alert-ind": "alert",
    "imminentperil-ind": "imminent_peril",
    "broadcast-ind": "broadcast",
    "access-token": "has_access_token",
}
_LOWERED = frozenset({"session_type", "request_type"})
_FLAGS = frozenset({"emergency", "alert", "imminent_peril", "broadcast"})
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def mc_info(message: Message, problems: Problems = None, service: str | None = None) -> McInfo | None:
    """The MC info body (``application/vnd.3gpp.mc{ptt,video,data}-info+xml``) of a message, or None.

    Found in a single-part body or any part of a multipart (also inside a ``message/sip`` part, as in the
    third-party REGISTER). ``service`` picks one when a message carries several. None when there is none,
    or when it cannot be read (then a ``Problem`` is appended to ``problems``).
    """
    for part in parts(message, problems):
        m = _INFO_TYPE.match(part.content_type)
        if m is None or (service is not None and m.group(1) != service):
            continue
        doc = read_xml(part, problems)
        return _info(doc.root, m.group(1)) if doc is not None else None
    return None


def _info(root: etree._Element, service: str | None) -> McInfo:
    if service is None:
        service = next((s for s in SERVICES if local_name(root).lower().startswith(s)), None)
    params = next((c for c in root if isinstance(c.tag, str) and local_name(c).endswith("-Params")), root)
    fields: dict[str, object] = {}
    protected = []
    token_text = None
    for child in params:
        if not isinstance(child.tag, str):
            continue
        name = _INFO_FIELDS.get(_SERVICE_PREFIX.sub("", local_name(child).lower()))
        if name is None or name in fields:
            continue
        text = value(child) or None
        if (child.get("type") or "").lower() == "protected":
            protected.append(name)
            text = None
        if name == "has_access_token":
            fields[name] = bool(text) or len(child) > 0 or name in protected
            token_text = text
        elif name in _FLAGS:
            fields[name] = _BOOLEANS.get(text.lower()) if text else None
        else:
            fields[name] = text.lower() if text and name in _LOWERED else text
    claims = jwt_claims(token_text) if token_text else None
    return McInfo(service, **fields, token_claims=claims, protected=tuple(protected))


# --- affiliation --------------------------------------------------------------------------------------

def affiliation_set(message: Message, problems: Problems = None) -> AffiliationSet | None:
    """What a SIP request says about affiliations (see ``AffiliationSet`` for the three kinds), or None.

    PUBLISH / NOTIFY ``Event: presence`` count when they are MC: an MC PresInfo namespace or
    ``affiliation`` element in the pidf, or MC service evidence in the headers. An unreadable pidf, or a
    body that cannot be split, gives None and a ``Problem``: what the client claimed is unknown.
    """
    if message.proto != "sip" or message.kind != "request":
        return None
    method = (message.method or "").upper()
    event = event_package(message)
    if event == "presence" and method in _PRESENCE:
        return _PRESENCE[method](message, problems)
    ctype = (first(message.headers, "content-type") or "").lower()
    if "affiliation-command" in ctype or ctype.lstrip().startswith("multipart/"):
        part = find_media(parts(message, problems), "affiliation-command+xml")
        if part is not None:
            return _command(part, problems)
    return None


def _publish(message: Message, problems: Problems) -> AffiliationSet | None:
    expires = to_int(first(message.headers, "expires"))
    found = parts(message, problems)
    if message.body and not found:
        return None  # a body that cannot be split: what it said is unknown (the problem is reported)
    pidf = find_media(found, "pidf+xml")
    if pidf is None:
        service = mc_service(message)
        if service is None:
            return None
        # no pidf: Expires 0 clears the set; otherwise (refresh, or an info-only body) no set is stated
        return AffiliationSet("publish", service, groups=frozenset() if expires == 0 else None,
                              expires=expires)
    read = _mc_pidf(pidf, message, problems)
    if read is None:
        return None
    root, affiliations, service = read
    tuple_ = find(root, "tuple")
    groups = frozenset(g for g in (attr(a, "group") for a in affiliations) if g)
    return AffiliationSet("publish", service, attr(root, "entity"), attr(tuple_, "id"),
                          frozenset() if expires == 0 else groups, expires, p_id=value(find(root, "p-id")))


def _mc_pidf(pidf, message: Message, problems: Problems):
    """The pidf's root, its affiliation elements and the MC service; None for presence of another kind."""
    doc = read_xml(pidf, problems)
    if doc is None:
        return None
    affiliations = findall(doc.root, "affiliation")
    service = _pres_service(doc.root, affiliations) or mc_service(message)
    if service is None and not affiliations:
        return None
    return doc.root, affiliations, service


def _notify(message: Message, problems: Problems) -> AffiliationSet | None:
    pidf = find_media(parts(message, problems), "pidf+xml")
    if pidf is None:
        return None
    read = _mc_pidf(pidf, message, problems)
    if read is None:
        return None
    root, affiliations, service = read
    entries = []
    for a in affiliations:
        group = attr(a, "group")
        if not group:
            continue
        owner = next(a.iterancestors("{*}tuple"), None)
        status = attr(a, "status")
        entries.append(AffiliationStatus(group, attr(a, "client") or attr(owner, "id"),
                                         status.strip().lower() if status else None, attr(a, "expires")))
    return AffiliationSet("notify", service, attr(root, "entity"), attr(find(root, "tuple"), "id"),
                          frozenset(e.group for e in entries), None, tuple(entries),
                          value(find(root, "p-id")))


_PRESENCE: dict[str, Callable[[Message, Problems], AffiliationSet | None]] = {
    "PUBLISH": _publish,
    "NOTIFY": _notify,
}


def _pres_service(root: etree._Element, affiliations: list[etree._Element]) -> str | None:
    """The service of the PresInfo namespace in use (``urn:3gpp:ns:mcvideoPresInfo:1.0`` → mcvideo)."""
    for element in affiliations[:1]:
        service = service_of_namespace(etree.QName(element).namespace)
        if service:
            return service
    for uri in root.nsmap.values():
        if uri and "presinfo" in uri.lower():
            return service_of_namespace(uri)
    return None


#: Affiliation-command verbs (local names) → ``COMMAND_VERBS``.
_VERBS = {"affiliate": "affiliate", "de-affiliate": "deaffiliate", "deaffiliate": "deaffiliate"}


def _command(part: BodyPart, problems: Problems) -> AffiliationSet | None:
    """Two shapes are known: MCOP ``<command-list><affiliate><group>…`` and
    ``<…-group-aff-control><…-group-id>…</…><affiliate/>`` (exact 24.379 F.4 schema UNCONFIRMED)."""
    doc = read_xml(part, problems)
    if doc is None:
        return None
    entries = []
    applied: set[tuple[etree._Element, str]] = set()  # (parent, verb) whose sibling groups are taken
    for element in doc.root.iter():
        if not isinstance(element.tag, str):
            continue
        verb = _VERBS.get(local_name(element).lower())
        if verb is None:
            continue
        groups = _groups(element)
        parent = element.getparent()
        if not groups and parent is not None:
            # Sibling groups: taken once per parent and verb, so n empty verbs beside n groups cost n, not
            # n * n (and give the entries once).
            if (parent, verb) in applied:
                continue
            applied.add((parent, verb))
            groups = _groups(parent)
        entries += [AffiliationStatus(g, None, verb) for g in groups if g]
    return AffiliationSet("command", service_of_media(part.content_type), entries=tuple(entries))


def _groups(element: etree._Element) -> list[str | None]:
    return [value(g) for g in element if isinstance(g.tag, str) and _is_group(g)]


def _is_group(element: etree._Element) -> bool:
    name = local_name(element).lower()
    return name == "group" or name.endswith("group-id")


# --- poc-settings, recipients -------------------------------------------------------------------------

def poc_settings(message: Message, problems: Problems = None) -> PocSettings | None:
    """A service-authorisation PUBLISH (``Event: poc-settings``, 24.379 §7.3.3): its answer mode, entity
    id, selected user-profile index and Expires; None for any other message. Fields the body does not
    give (refresh, logoff ``Expires: 0``, unreadable body) are None."""
    if message.proto != "sip" or (message.method or "").upper() != "PUBLISH":
        return None
    if event_package(message) != "poc-settings":
        return None
    expires = to_int(first(message.headers, "expires"))
    part = find_media(parts(message, problems), "poc-settings+xml")
    doc = read_xml(part, problems) if part is not None else None
    if doc is None:
        return PocSettings(expires=expires)
    mode = value(find(doc.root, "answer-mode"))
    return PocSettings(mode.lower() if mode else None, attr(find(doc.root, "entity"), "id"),
                       to_int(value(find(doc.root, "user-profile-index"))), expires)


def recipients(message: Message, problems: Problems = None) -> tuple[str, ...]:
    """The URIs of ``application/resource-lists+xml`` parts with ``Content-Disposition: recipient-list``
    (RFC 5366): the called MC service ID of a private call, the members of an ad-hoc group…

    A single-part body takes the disposition from the message's own header. Order kept, duplicates dropped.
    """
    found = parts(message, problems)
    single = len(found) == 1 and not (first(message.headers, "content-type") or "").lower().lstrip() \
        .startswith("multipart/")
    out: dict[str, None] = {}  # ordered, and a set: membership in a growing list was quadratic
    for part in found:
        if not part.content_type.endswith("resource-lists+xml"):
            continue
        disposition = part.disposition
        if single and disposition is None:
            own = first(message.headers, "content-disposition")
            disposition = own.partition(";")[0].strip().lower() if own else None
        if disposition != "recipient-list":
            continue
        doc = read_xml(part, problems)
        if doc is None:
            continue
        for entry in findall(doc.root, "entry"):
            uri = attr(entry, "uri")
            if uri and uri.strip():
                out.setdefault(uri.strip())
    return tuple(out)
