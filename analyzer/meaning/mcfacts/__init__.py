"""MC facts out of single messages: what a SIP/HTTP message says, in MC terms, without MC policy.

The events stage reads these; it decides what they mean together (differences between affiliation sets,
which INVITE is a late entry…). Every function is pure (no I/O, no state kept between calls), takes a
``Message``, reads a body only when asked, tolerates the real-world variants of REFERENCE.md §5 (compact
or long header names in any case, quoted or percent-encoded ICSI, feature tags with or without ``+``, MC
XML with a default namespace, any prefix or none, contentType wrappers or plain text, multipart parts in
any order or a single-part body) and never raises on hostile input.

Problems: a body that should hold the facts but cannot be read (XML refused by the hardened parser,
not well-formed, a multipart without a usable boundary) makes the function return None (or leave it
out); when the caller passes a list as ``problems``, a ``Problem(code, message)`` is appended for it,
with ``code`` one of the diagnostic codes ``xml-rejected`` / ``malformed-body``. Calling several
functions on one message can report the same multipart problem more than once.

API:
    uri_parts(text) -> Uri | None                 name_addr(value) -> NameAddr | None
    domain_of(uri | text | NameAddr) -> str | None
    mc_service(msg) -> 'mcptt'|'mcvideo'|'mcdata'|None          mc_services(msg) -> tuple[str, ...]
    mc_info(msg, problems=None, service=None) -> McInfo | None
    affiliation_set(msg, problems=None) -> AffiliationSet | None
    poc_settings(msg, problems=None) -> PocSettings | None
    recipients(msg, problems=None) -> tuple[str, ...]
    contact_facts(msg) -> ContactFacts | None    contacts(msg) -> tuple[ContactFacts, ...]
    reason(msg) -> Reason | None                 reasons(msg) -> tuple[Reason, ...]
    warnings(msg) -> tuple[SipWarning, ...]
    xcap_target(msg) -> XcapTarget | None        token_request(msg) -> TokenRequest | None
    media_endpoints(msg, problems=None) -> tuple[str, ...]  (ip:ports of the SDP's RTP/RTCP/floor)
    bearer_token_claims(msg) -> TokenClaims | None   jwt_claims(token_text) -> TokenClaims | None
    refer_to(msg) -> ReferTo | None              target_dialog(msg) -> TargetDialog | None
    referred(msg, refer_to, problems=None) -> (McInfo | None, recipients)   (pre-established sessions)
"""

from analyzer.meaning.mcfacts.bodies import affiliation_set, mc_info, poc_settings, recipients
from analyzer.meaning.mcfacts.headers import (
    contact_facts,
    contacts,
    mc_service,
    mc_services,
    reason,
    reasons,
    warnings,
)
from analyzer.meaning.mcfacts.records import (
    AFFILIATION_STATUSES,
    COMMAND_VERBS,
    SERVICES,
    AffiliationSet,
    AffiliationStatus,
    ContactFacts,
    McInfo,
    NameAddr,
    PocSettings,
    Problem,
    Reason,
    SipWarning,
    TokenClaims,
    TokenRequest,
    Uri,
    XcapTarget,
)
from analyzer.meaning.mcfacts.refer import ReferTo, TargetDialog, refer_to, referred, target_dialog
from analyzer.meaning.mcfacts.sdp import media_endpoints
from analyzer.meaning.mcfacts.tokens import bearer_token_claims, jwt_claims, token_request
from analyzer.meaning.mcfacts.uri import domain_of, name_addr, uri_parts
from analyzer.meaning.mcfacts.xcap import xcap_target

__all__ = [
    "AFFILIATION_STATUSES", "COMMAND_VERBS", "SERVICES", "AffiliationSet", "AffiliationStatus",
    "ContactFacts", "McInfo", "NameAddr", "PocSettings", "Problem", "Reason", "ReferTo", "SipWarning",
    "TargetDialog", "TokenClaims", "TokenRequest", "Uri", "XcapTarget", "affiliation_set",
    "bearer_token_claims", "contact_facts", "contacts", "domain_of", "jwt_claims", "mc_info", "mc_service",
    "mc_services", "media_endpoints", "name_addr", "poc_settings", "reason", "reasons", "recipients",
    "refer_to", "referred", "target_dialog", "token_request", "uri_parts", "warnings", "xcap_target",
]
