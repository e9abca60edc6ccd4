"""Media-plane control packets as a UE and an MC server send them: TS 24.380 "MCPT" floor control and
"MCPC" pre-established session call control RTCP APP packets, and RTP packets carrying a stream's SSRC.

The inverse of ``analyzer.messages.floor`` (which synth may not import: it sits beside the pipeline), so
the field IDs are written out here from TS 24.380 tables 8.2.3.1-2 and 8.3.3.1-2."""

from __future__ import annotations

import zlib

#: Message name → subtype (low four bits; ``ack=True`` sets the fifth).
MCPT = {"floor-request": 0, "floor-granted": 1, "floor-taken": 2, "floor-deny": 3, "floor-release": 4,
        "floor-idle": 5, "floor-revoke": 6, "floor-ack": 10}
MCPC = {"connect": 0, "disconnect": 1, "acknowledgement": 2}
#: Field name → TS 24.380 field ID ("MCPT" from 102, "MCPC" from 0).
MCPT_FIELDS = {"priority": 102, "duration": 103, "reject_cause": 104, "granted_party": 106, "user_id": 109,
               "sequence_number": 111, "message_type": 115, "floor_indicator": 116, "ssrc": 117}
MCPC_FIELDS = {"session_identity": 1, "group_id": 3, "answer_state": 4, "inviting_user_id": 5,
               "reason_code": 6}


def ssrc_of(call_id: str, who: str) -> int:
    """The SSRC ``who`` (ue, floor-control-server, talker ...) uses in the call or session ``call_id``:
    derived, not drawn, so scenarios without media-plane steps draw the same random numbers as before."""
    return zlib.crc32(f"{who}/{call_id}".encode()) or 1


def field(ident: int, value: bytes) -> bytes:
    """One field: ID, length, value, padded to a 32-bit boundary."""
    raw = bytes((ident, len(value))) + value
    return raw + bytes(-len(raw) % 4)


def _encode(name: str, value: int | str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if name == "ssrc":
        return value.to_bytes(4, "big") + b"\x00\x00"
    if name in ("priority", "message_type"):
        return bytes((value, 0))
    return value.to_bytes(2, "big")


def app_packet(name: bytes, subtype: int, ssrc: int, data: bytes) -> bytes:
    """An RTCP APP packet (RFC 3550 §6.7); ``data`` a multiple of four bytes."""
    length = (12 + len(data)) // 4 - 1
    return bytes((0x80 | (subtype & 0x1F), 204)) + length.to_bytes(2, "big") + ssrc.to_bytes(4, "big") \
        + name + data


def floor_message(message: str, sender: int, ack: bool = False, **fields: int | str) -> bytes:
    """An "MCPT" message from SSRC ``sender``, e.g. ``floor_message("floor-granted", 7, duration=30)``."""
    data = b"".join(field(MCPT_FIELDS[k], _encode(k, v)) for k, v in fields.items())
    return app_packet(b"MCPT", MCPT[message] | (0x10 if ack else 0), sender, data)


def mcpc_message(message: str, sender: int, ack: bool = False, **fields: int | str) -> bytes:
    """An "MCPC" message (``session_identity`` is written as a prearranged group session)."""
    parts = []
    for k, v in fields.items():
        value = b"\x03" + str(v).encode() if k == "session_identity" else _encode(k, v)
        parts.append(field(MCPC_FIELDS[k], value))
    return app_packet(b"MCPC", MCPC[message] | (0x10 if ack else 0), sender, b"".join(parts))


def rtp_packet(ssrc: int, seq: int, timestamp: int, payload_type: int = 96, size: int = 32) -> bytes:
    """An RTP packet (RFC 3550 §5.1) of ``size`` payload bytes of silence."""
    return bytes((0x80, payload_type & 0x7F)) + (seq & 0xFFFF).to_bytes(2, "big") \
        + (timestamp & 0xFFFFFFFF).to_bytes(4, "big") + ssrc.to_bytes(4, "big") + bytes(size)
