"""HTTP and TLS as the configuration management client and the IdM client put them on the wire.

Plain HTTP/1.1 messages (XCAP user-profile GET, OIDC token POST) and their bodies, a JWT-shaped access
token, and for HTTPS the TLS 1.3 record sequence an observer sees: a ClientHello with SNI, the server's
ServerHello / ChangeCipherSpec / encrypted flight, then ApplicationData records whose sizes follow the
HTTP messages they hide (plaintext + 1 content-type byte + 16-byte AEAD tag). Nothing is really encrypted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import struct
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from analyzer.synth.sip import CRLF, Service

HTTP_REASONS = {200: "OK", 201: "Created", 204: "No Content", 302: "Found", 304: "Not Modified",
                400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                409: "Conflict", 412: "Precondition Failed", 500: "Internal Server Error",
                502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
USER_AGENT_HTTP = "mcxa-synth-cmc/1.0 (MCPTT configuration management client)"
SERVER_HTTP = "mcxa-synth-xcap/1.0"
SCOPE = ("openid 3gpp:mc:ptt_service 3gpp:mc:ptt_config_management_service "
         "3gpp:mc:ptt_group_management_service 3gpp:mc:ptt_key_management_service")


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def http_request(method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers)]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return (CRLF.join(lines) + CRLF + CRLF).encode() + body


def http_response(status: int, headers: Sequence[tuple[str, str]], body: bytes = b"") -> bytes:
    reason = HTTP_REASONS.get(status, "Error" if status >= 400 else "OK")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{n}: {v}" for n, v in headers)]
    if status != 304 and status >= 200:
        lines.append(f"Content-Length: {len(body)}")
    return (CRLF.join(lines) + CRLF + CRLF).encode() + (b"" if status == 304 else body)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random, issuer: str, subject: str, claims: dict, iat: int, lifetime: int = 3600) -> str:
    """A JWT-shaped token (RS256 header, real JSON claims, a random 256-byte "signature")."""
    header = {"alg": "RS256", "typ": "JWT", "kid": f"mcxa-synth-{rng.getrandbits(32):08x}"}
    body = {"iss": issuer, "sub": subject, **claims, "iat": iat, "exp": iat + lifetime}
    parts = [_b64url(json.dumps(p, separators=(",", ":")).encode()) for p in (header, body)]
    return ".".join([*parts, _b64url(rng.randbytes(256))])


def token_request_body(rng: random.Random, client_id: str) -> bytes:
    """OIDC authorization-code exchange (RFC 6749 §4.1.3, with a PKCE verifier)."""
    return urlencode({"grant_type": "authorization_code", "code": _b64url(rng.randbytes(24)),
                      "redirect_uri": "http://localhost/mcptt/callback", "client_id": client_id,
                      "code_verifier": _b64url(rng.randbytes(32))}).encode()


def token_response_body(access: str, id_token: str, refresh: str) -> bytes:
    return json.dumps({"access_token": access, "token_type": "Bearer", "expires_in": 3600,
                       "refresh_token": refresh, "id_token": id_token, "scope": SCOPE},
                      separators=(",", ":")).encode()


def etag(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:16] + '"'


def user_profile_xml(service: Service, mc_id: str, xui: str, display: str, organisation: str,
                     groups: Iterable[str], peers: Iterable[str]) -> bytes:
    """An MC service user profile (``urn:3gpp:<service>:user-profile:1.0``, Rel-13 element names), shaped
    like ``sample_captures/real/mcptt-user-profile.xml``."""
    s = service.name
    up = s.upper()
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<{s}-user-profile xmlns="urn:3gpp:{s}:user-profile:1.0"',
             '    xmlns:cp="urn:ietf:params:xml:ns:common-policy"',
             f"    XUI-URI={quoteattr(xui)}", '    user-profile-index="1">',
             f'  <Name xml:lang="en">{escape(display)}</Name>', "  <Status>true</Status>",
             f'  <ProfileName xml:lang="en">{escape(display.lower())}-default</ProfileName>',
             "  <Pre-selected-indication/>", '  <Common index="c1">', "    <UserAlias>",
             f'      <alias-entry index="a1" xml:lang="en">{escape(display)}</alias-entry>',
             "    </UserAlias>",
             f'    <{up}UserID index="u1">', f"      <uri-entry>{escape(mc_id)}</uri-entry>",
             f'      <display-name xml:lang="en">{escape(display)}</display-name>', f"    </{up}UserID>"]
    peers = list(peers)
    if peers:
        lines += ["    <PrivateCall>", '      <PrivateCallList index="pl1">']
        for i, peer in enumerate(peers, 1):
            lines += [f'        <PrivateCallURI index="p{i}">',
                      f"          <uri-entry>{escape(peer)}</uri-entry>", "        </PrivateCallURI>"]
        lines += ["      </PrivateCallList>", "    </PrivateCall>"]
    lines += [f"    <{up}-group-call>", "      <MaxSimultaneousCallsN6>2</MaxSimultaneousCallsN6>",
              "      <Priority>7</Priority>", f"    </{up}-group-call>",
              f"    <MissionCriticalOrganization>{escape(organisation)}</MissionCriticalOrganization>",
              "    <ParticipantType>first-responder</ParticipantType>", "  </Common>",
              '  <OnNetwork index="on1">', f'    <{up}GroupInfo index="g">']
    for i, group in enumerate(groups, 1):
        lines += [f'      <entry index="g{i}">', f"        <uri-entry>{escape(group)}</uri-entry>",
                  "      </entry>"]
    lines += [f"    </{up}GroupInfo>", "    <MaxAffiliationsN2>8</MaxAffiliationsN2>",
              "    <MaxSimultaneousTransmissionsN7>1</MaxSimultaneousTransmissionsN7>", "  </OnNetwork>",
              "  <cp:ruleset>", f'    <cp:rule id="authz-{hashlib.sha1(mc_id.encode()).hexdigest()[:8]}">',
              "      <cp:conditions>",
              f"        <cp:identity><cp:one id={quoteattr(mc_id)}/></cp:identity>", "      </cp:conditions>",
              "      <cp:actions>", "        <allow-private-call>true</allow-private-call>",
              "        <allow-emergency-group-call>true</allow-emergency-group-call>",
              "        <allow-request-affiliated-groups>true</allow-request-affiliated-groups>",
              "      </cp:actions>", "    </cp:rule>", "  </cp:ruleset>", f"</{s}-user-profile>"]
    return ("\n".join(lines) + "\n").encode()


# -- TLS 1.3 as seen from outside -------------------------------------------------------------------------

HANDSHAKE, CHANGE_CIPHER_SPEC, APPLICATION_DATA = 22, 20, 23
_MAX_PLAINTEXT = 1 << 14
_AEAD_OVERHEAD = 17  # inner content type + 16-byte tag


def _record(kind: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", kind, version, len(body)) + body


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _vec(body: bytes, size: int = 2) -> bytes:
    return len(body).to_bytes(size, "big") + body


def client_hello(rng: random.Random, sni: str) -> tuple[bytes, bytes]:
    """A TLS 1.3 ClientHello record naming ``sni``; returns (record, session id to echo)."""
    session_id = rng.randbytes(32)
    suites = b"".join(struct.pack("!H", s) for s in (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
                                                        0xCCA9, 0xCCA8))
    name = sni.encode("idna")
    extensions = b"".join([
        _ext(0, _vec(b"\x00" + _vec(name))),  # server_name
        _ext(11, b"\x01\x00"),  # ec_point_formats: uncompressed
        _ext(10, _vec(b"\x00\x1d\x00\x17\x00\x18")),  # supported_groups
        _ext(35, b""),  # session_ticket
        _ext(16, _vec(_vec(b"http/1.1", 1))),  # ALPN
        _ext(13, _vec(b"".join(struct.pack("!H", a) for a in (0x0403, 0x0804, 0x0401, 0x0503, 0x0805,
                                                              0x0501, 0x0806, 0x0601)))),
        _ext(43, _vec(b"\x03\x04\x03\x03", 1)),  # supported_versions
        _ext(45, _vec(b"\x01", 1)),  # psk_key_exchange_modes: psk_dhe_ke
        _ext(51, _vec(b"\x00\x1d" + _vec(rng.randbytes(32)))),  # key_share x25519
    ])
    body = (b"\x03\x03" + rng.randbytes(32) + _vec(session_id, 1) + _vec(suites) + b"\x01\x00"
            + _vec(extensions))
    handshake = b"\x01" + _vec(body, 3)
    return _record(HANDSHAKE, handshake, 0x0301), session_id


def server_flight(rng: random.Random, session_id: bytes) -> list[bytes]:
    """ServerHello, ChangeCipherSpec, then the encrypted EncryptedExtensions+Certificate, CertificateVerify
    and Finished as ApplicationData records."""
    extensions = _ext(43, b"\x03\x04") + _ext(51, b"\x00\x1d" + _vec(rng.randbytes(32)))
    body = b"\x03\x03" + rng.randbytes(32) + _vec(session_id, 1) + b"\x13\x01\x00" + _vec(extensions)
    hello = _record(HANDSHAKE, b"\x02" + _vec(body, 3))
    ccs = _record(CHANGE_CIPHER_SPEC, b"\x01")
    return [hello + ccs + application_data(rng, rng.randint(2300, 3600))
            + application_data(rng, 264) + application_data(rng, 36)]


def client_finished(rng: random.Random) -> bytes:
    return _record(CHANGE_CIPHER_SPEC, b"\x01") + application_data(rng, 36)


def session_tickets(rng: random.Random) -> bytes:
    return application_data(rng, 233) + application_data(rng, 233)


def close_notify(rng: random.Random) -> bytes:
    return application_data(rng, 2)


def application_data(rng: random.Random, plaintext: int) -> bytes:
    """ApplicationData records carrying ``plaintext`` bytes (split at the 16 KiB record limit)."""
    out = []
    while True:
        size = min(plaintext, _MAX_PLAINTEXT)
        out.append(_record(APPLICATION_DATA, rng.randbytes(size + _AEAD_OVERHEAD)))
        plaintext -= size
        if plaintext <= 0:
            return b"".join(out)
