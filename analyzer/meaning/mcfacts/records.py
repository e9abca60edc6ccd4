"""The records the MC fact extractors return: small, frozen, holding facts read from one message.

No record ever holds a secret: access tokens, authorization codes, passwords and signatures are read
only to decide a flag or to decode identity claims, then dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The MC services (REFERENCE.md §2.1), in the order ties are reported.
SERVICES = ("mcptt", "mcvideo", "mcdata")

#: Problem codes: the same names as ``analyzer.base.diagnostics.CODES`` so a caller can add them as they are.
PROBLEM_CODES = ("malformed-body", "xml-rejected", "table-full")

#: Status values of the affiliation pidf extension (MCOP StatusType.java; KR §9.2.2.2.5), and the verbs of
#: an affiliation command (negotiated mode, 24.379 §9.2.1.4).
AFFILIATION_STATUSES = ("affiliating", "affiliated", "deaffiliating")
COMMAND_VERBS = ("affiliate", "deaffiliate")
AFFILIATION_KINDS = ("publish", "notify", "command")

Params = tuple[tuple[str, str], ...]


def _param(params: Params, name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in params if k == name), None)


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the extractors had to skip (a body, a table entry): ``code`` is a diagnostic code,
    ``message`` one line saying why, ``frames`` where, when known."""

    code: str
    message: str
    frames: tuple[int, ...] = ()

    def __post_init__(self):
        if self.code not in PROBLEM_CODES:
            raise ValueError(f"unknown problem code {self.code!r}")


@dataclass(frozen=True, slots=True)
class Uri:
    """A SIP/SIPS/TEL (or other) URI taken apart.

    ``scheme`` lower case. ``user``: percent-decoded user part (the number for ``tel:``), password dropped.
    ``host``: lower case, IPv6 without brackets. ``params``: URI parameters as ``(lower-case name, value)``,
    ``''`` for a flag. Other schemes (``urn:``, ``http:``…) keep only ``text`` and ``scheme`` (and host/port
    for http/https).
    """

    text: str
    scheme: str
    user: str | None = None
    host: str | None = None
    port: int | None = None
    params: Params = ()

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    @property
    def hostport(self) -> str | None:
        """``host:port`` (IPv6 in brackets), or the host alone without a port."""
        if self.host is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def aor(self) -> str:
        """A comparison key: ``scheme:user@host`` (no port, no parameters); ``tel:`` numbers without visual
        separators. Two spellings of one identity give the same key."""
        if self.scheme == "tel" and self.user is not None:
            return "tel:" + "".join(c for c in self.user if c not in "-.()")
        if self.scheme in ("sip", "sips") and self.host is not None:
            host = f"[{self.host}]" if ":" in self.host else self.host
            return f"{self.scheme}:{self.user}@{host}" if self.user is not None else f"{self.scheme}:{host}"
        return self.text


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact/P-Asserted-Identity/Referred-By value: display name, URI, header parameters."""

    display: str | None
    uri: Uri | None
    params: Params = ()

    def param(self, name: str) -> str | None:
        return _param(self.params, name)

    @property
    def tag(self) -> str | None:
        return self.param("tag")


@dataclass(frozen=True, slots=True)
class McInfo:
    """The fields of an mcptt-info / mcvideo-info / mcdata-info body (24.379 F.1 and copies).

    URIs and strings are as sent (contentType wrapper removed, stripped); None when absent. A field sent
    encrypted (``type="Protected"``) is None and named in ``protected``. ``session_type`` and
    ``request_type`` are lower-cased. Indications are None when absent. ``token_claims``: identity claims of
    the access token when it is a readable JWT (the token itself is never kept).
    """

    service: str | None
    session_type: str | None = None
    request_type: str | None = None
    request_uri: str | None = None
    calling_user_id: str | None = None
    called_party_id: str | None = None
    calling_group_id: str | None = None
    associated_group_id: str | None = None
    client_id: str | None = None
    originated_by: str | None = None
    has_access_token: bool = False
    token_claims: TokenClaims | None = None
    emergency: bool | None = None
    alert: bool | None = None
    imminent_peril: bool | None = None
    broadcast: bool | None = None
    protected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AffiliationStatus:
    """One entry of an affiliation NOTIFY (``status`` ∈ ``AFFILIATION_STATUSES`` as sent, lower-cased;
    ``expires`` the xs:dateTime text) or of an affiliation command (``status`` ∈ ``COMMAND_VERBS``)."""

    group: str
    client: str | None
    status: str | None
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class AffiliationSet:
    """What one message says about affiliations.

    ``kind``:
      * ``publish`` — the client's own PUBLISH ``Event: presence``. ``groups`` is the **full set** it claims
        (set replacement: the events stage computes differences); ``frozenset()`` when it lists none or
        clears the publication (``expires == 0``); **None** when the PUBLISH states no set (a refresh with
        SIP-If-Match and no body, or a body without pidf) — keep the previous set.
      * ``notify`` — the server's NOTIFY ``Event: presence``: ``entries`` per (group, client); ``groups``
        every group named, whatever its status.
      * ``command`` — an ``…-affiliation-command+xml`` body (negotiated mode, or a legacy client): a request
        about *another* user's affiliations; ``groups`` is None, ``entries`` carry the verbs.
    ``expires``: the Expires header (PUBLISH). ``client``: the pidf tuple id (the MC client ID).
    """

    kind: str
    service: str | None
    entity: str | None = None
    client: str | None = None
    groups: frozenset[str] | None = None
    expires: int | None = None
    entries: tuple[AffiliationStatus, ...] = ()
    p_id: str | None = None

    def __post_init__(self):
        if self.kind not in AFFILIATION_KINDS:
            raise ValueError(f"unknown affiliation kind {self.kind!r}")

    @property
    def clears(self) -> bool:
        """A PUBLISH with ``Expires: 0``: the client removes its publication (de-affiliates from all)."""
        return self.kind == "publish" and self.expires == 0


@dataclass(frozen=True, slots=True)
class PocSettings:
    """A service-authorisation PUBLISH (``Event: poc-settings``): answer mode as sent (lower case), the
    poc-settings entity id (the MC client ID), the selected user-profile index, the Expires header."""

    answer_mode: str | None = None
    entity: str | None = None
    user_profile_index: int | None = None
    expires: int | None = None


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """One Contact value.

    ``instance``: ``+sip.instance`` without quotes and angle brackets (``urn:gsma:imei:…``).
    ``feature_tags``: names of feature-tag parameters, lower case, without the ``+``
    (``g.3gpp.mcptt``, ``g.3gpp.icsi-ref``, ``sip.instance``…). ``icsi``: the ICSI URNs of
    ``g.3gpp.icsi-ref``, percent-decoded. ``services``: MC services those name. ``expires``: the Contact's
    ``expires`` parameter, else for REGISTER (and its responses) the Expires header. ``address``: host:port
    of the Contact URI. ``wildcard``: ``Contact: *``.
    """

    uri: Uri | None
    display: str | None = None
    params: Params = ()
    instance: str | None = None
    feature_tags: frozenset[str] = frozenset()
    icsi: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    isfocus: bool = False
    expires: int | None = None
    wildcard: bool = False

    @property
    def address(self) -> str | None:
        return self.uri.hostport if self.uri is not None else None

    def param(self, name: str) -> str | None:
        return _param(self.params, name)


@dataclass(frozen=True, slots=True)
class Reason:
    """One Reason header value (RFC 3326): protocol (upper case: ``SIP``, ``Q.850``…), cause, text."""

    protocol: str
    cause: int | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class SipWarning:
    """One Warning header value (RFC 3261 §20.43): ``code agent "text"``.

    24.379 §4.4 puts an MC-specific three-digit code at the start of a 399 warning's text
    (``399 host "110 user declined the call invitation"``): that is ``mc_code``, the rest ``mc_text``.
    """

    code: int | None
    agent: str | None
    text: str
    mc_code: int | None = None
    mc_text: str | None = None


@dataclass(frozen=True, slots=True)
class XcapTarget:
    """Where an HTTP request points in an XCAP tree (RFC 4825 §6), all percent-decoded.

    ``root``: the XCAP root path (``/xcap-root``). ``scope``: ``users`` | ``global`` | None. ``xui``: the user
    of a ``users`` document. ``document``: the path below the xui (or below ``global``). ``node``: the node
    selector after ``~~``, if any. ``host``: from an absolute-form target, else the Host header (lower case,
    no port). ``service``: the MC service the AUID names.
    """

    method: str | None
    host: str | None
    root: str
    auid: str
    scope: str | None = None
    xui: str | None = None
    document: str | None = None
    node: str | None = None
    service: str | None = None

    @property
    def is_user_profile(self) -> bool:
        return self.auid.endswith(".user-profile")


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """An OAuth 2.0 / OIDC token-endpoint request. Only non-secret fields are kept: never the code,
    code_verifier, refresh token, client secret, assertion or password."""

    host: str | None
    path: str
    grant_type: str | None = None
    client_id: str | None = None
    scope: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """Identity claims of a JWT, for correlation only (no signature check; the token is not kept).
    ``client_id`` falls back to ``azp``."""

    iss: str | None = None
    sub: str | None = None
    client_id: str | None = None
    mcptt_id: str | None = None
    mcvideo_id: str | None = None
    mcdata_id: str | None = None

    @property
    def mc_id(self) -> str | None:
        """The first MC service ID claim present (MCPTT, then MCVideo, then MCData)."""
        return self.mcptt_id or self.mcvideo_id or self.mcdata_id
