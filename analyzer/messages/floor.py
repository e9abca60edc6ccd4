"""MC media-plane control messages: RTCP APP packets (RFC 3550 §6.7) to ``FloorMessage`` records.

TS 24.380 §8.2 MCPTT floor control (APP name "MCPT"), §8.3 pre-established session call control ("MCPC")
and TS 24.581 §9 MCVideo transmission control ("MCV0".."MCV3"). The message type is the APP subtype: its
low four bits name the message, its high bit asks for an acknowledgement (TS 24.380 table 8.2.2-1). The
application data is a run of fields: an 8-bit field ID, an 8-bit length (16-bit for IDs 192-255) and the
value, each field padded to a 32-bit boundary. Unknown fields are kept as hex; a field that overruns its
packet ends the decoding of that packet with a problem (the fields before it stand).

MCVideo message types are given by number only (``mcv0-3`` ...): mcxa does not name them. Linear in the
datagram, bounded by ``MAX_FIELDS`` per packet and ``MAX_PACKETS`` per datagram.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.transport.records import ControlPayload
from analyzer.transport.rtcp import APP, APP_NAMES

#: APP name → the ``proto`` of its messages (``mcxa messages``).
PROTOS = {name: "mcptt-fc" if name == b"MCPT" else "mcpc" if name == b"MCPC" else "mcvideo-tc"
          for name in APP_NAMES}
MAX_PACKETS = 64  # APP packets read from one datagram (a real one carries one or two)
MAX_FIELDS = 64  # fields read from one APP packet (a real one has a dozen at most)

#: TS 24.380 table 8.2.2-1: the low four bits of an "MCPT" subtype.
MCPT_TYPES = {0: "floor-request", 1: "floor-granted", 2: "floor-taken", 3: "floor-deny", 4: "floor-release",
              5: "floor-idle", 6: "floor-revoke", 8: "floor-queue-position-request",
              9: "floor-queue-position-info", 10: "floor-ack", 11: "unicast-media-flow-control",
              14: "floor-queued-cancel", 15: "floor-release-multi-talker"}
#: TS 24.380 table 8.3.2-1: "MCPC" subtypes.
MCPC_TYPES = {0: "connect", 1: "disconnect", 2: "acknowledgement"}

_U16, _U8, _TEXT, _SSRC, _PRIORITY, _QUEUE, _CAUSE, _SESSION, _STREAMS = range(9)
#: "MCPT" field ID → (name, value coding): TS 24.380 table 8.2.3.1-2 numbers them from 102 (107 unused);
#: early implementations numbered the same list from 0 without the gap, which Wireshark also reads.
_MCPT_FIELDS = {
    102: ("priority", _PRIORITY), 103: ("duration", _U16), 104: ("reject_cause", _CAUSE),
    105: ("queue_info", _QUEUE), 106: ("granted_party", _TEXT), 108: ("permission_to_request", _U16),
    109: ("user_id", _TEXT), 110: ("queue_size", _U16), 111: ("sequence_number", _U16),
    112: ("queued_user_id", _TEXT), 113: ("source", _U16), 114: ("track_info", None),
    115: ("message_type", _U8), 116: ("floor_indicator", _U16), 117: ("ssrc", _SSRC),
    118: ("granted_users", None), 119: ("ssrcs", None), 120: ("functional_alias", _TEXT),
    121: ("functional_aliases", None), 122: ("location", None), 123: ("locations", None),
    124: ("queued_purpose", None), 125: ("queued_users", None), 126: ("response_state", None),
    127: ("media_flow_control", None),
}
_MCPT_FIELDS.update({k - (102 if k < 107 else 103): v for k, v in list(_MCPT_FIELDS.items())})
#: "MCPC" field ID → (name, coding): TS 24.380 table 8.3.3.1-2.
_MCPC_FIELDS = {0: ("media_streams", _STREAMS), 1: ("session_identity", _SESSION), 2: ("warning", _TEXT),
                3: ("group_id", _TEXT), 4: ("answer_state", _U16), 5: ("inviting_user_id", _TEXT),
                6: ("reason_code", _U16), 192: ("pck_i_message", None)}
_SESSION_TYPES = {0: "none", 1: "private", 3: "prearranged", 4: "chat"}


@dataclass(frozen=True, slots=True)
class FloorMessage:
    """One media-plane control message (one RTCP APP packet) with where and when it was seen.

    ``fields``: (name, value) in packet order; a value is an int, a text, or ``"0x..."`` hex for a field
    mcxa does not read (unknown IDs are named ``field-N``)."""

    proto: str  # mcptt-fc | mcpc | mcvideo-tc
    name: str  # the APP name: MCPT, MCPC, MCV0 ...
    message: str  # floor-granted, connect, mcv0-3 ... (``floor-N`` for a subtype no table names)
    subtype: int  # the five subtype bits as sent
    ssrc: int  # the sender's SSRC (the APP header's)
    fields: tuple[tuple[str, int | str], ...]
    frames: tuple[int, ...]
    time: float
    src: str
    dst: str
    transport: str = "udp"

    @property
    def frame(self) -> int:
        return self.frames[-1]

    @property
    def ack_requested(self) -> bool:
        return bool(self.subtype & 0x10)

    def get(self, name: str) -> int | str | None:
        return next((v for n, v in self.fields if n == name), None)


def _message_name(app: bytes, subtype: int) -> str:
    if app == b"MCPT":
        return MCPT_TYPES.get(subtype & 0x0F, f"floor-{subtype}")
    if app == b"MCPC":
        return MCPC_TYPES.get(subtype & 0x0F, f"mcpc-{subtype}")
    return f"{app.decode().lower()}-{subtype & 0x0F}"


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace").rstrip("\x00")


def _value(coding: int | None, value: bytes) -> tuple[int | str, str | None]:
    """A field value as mcxa shows it, and a problem when it is shorter than its coding needs."""
    n = len(value)
    if coding is None:
        return "0x" + value.hex(), None
    if coding == _TEXT:
        return _text(value), None
    need = {_U8: 1, _SSRC: 4, _QUEUE: 2, _STREAMS: 2, _SESSION: 1}.get(coding, 2)
    if n < need:
        return "0x" + value.hex(), f"{n} byte(s), {need} needed"
    if coding in (_U8, _PRIORITY):
        return value[0], None
    if coding == _SSRC:
        return int.from_bytes(value[:4], "big"), None
    if coding == _QUEUE:
        return f"position {value[0]}, priority {value[1]}", None
    if coding == _STREAMS:
        return f"media stream {value[0]}, control channel {value[1]}", None
    if coding == _SESSION:
        kind = _SESSION_TYPES.get(value[0], str(value[0]))
        return f"{kind} {_text(value[1:])}".rstrip(), None
    number = (value[0] << 8) | value[1]
    if coding == _CAUSE:
        phrase = _text(value[2:])
        return f"{number} {phrase}" if phrase else number, None
    return number, None


def _fields(app: bytes, data: bytes, start: int, end: int, problems: list[str]) -> tuple:
    table = _MCPT_FIELDS if app == b"MCPT" else _MCPC_FIELDS if app == b"MCPC" else {}
    out = []
    pos = start
    while pos < end and len(out) < MAX_FIELDS:
        if end - pos < 2:
            if any(data[pos:end]):
                problems.append(f"{end - pos} stray byte(s) after the last field")
            break
        ident = data[pos]
        if ident >= 192:  # 16-bit length
            if end - pos < 3:
                problems.append(f"field {ident} is cut short")
                break
            length, head = (data[pos + 1] << 8) | data[pos + 2], 3
        else:
            length, head = data[pos + 1], 2
        if ident == 0 and length == 0 and not any(data[pos:end]):
            break  # zero padding at the end
        stop = pos + head + length
        if stop > end:
            problems.append(f"field {ident} claims {length} bytes, {end - pos - head} left")
            break
        name, coding = table.get(ident, (f"field-{ident}", None))
        value, problem = _value(coding, data[pos + head:stop])
        if problem:
            problems.append(f"field {name}: {problem}")
        out.append((name, value))
        pos = stop + (-(head + length) % 4)
    else:
        if pos < end and len(out) >= MAX_FIELDS:
            problems.append(f"more than {MAX_FIELDS} fields: the rest is not read")
    return tuple(out)


def decode_control(payload: ControlPayload) -> tuple[list[FloorMessage], list[str]]:
    """Every APP packet of a decoded name in one UDP payload (several may follow each other), and the
    problems met, one line each. Other RTCP packets (SR, RR, SDES, BYE) in the datagram are skipped."""
    data, frames, time, src, dst = payload.data, payload.frames, payload.time, payload.src, payload.dst
    found: list[FloorMessage] = []
    problems: list[str] = []
    pos, n, packets = 0, len(data), 0
    while pos + 4 <= n and packets < MAX_PACKETS:
        packets += 1
        first, ptype = data[pos], data[pos + 1]
        if first >> 6 != 2:
            problems.append(f"byte {pos}: RTCP version {first >> 6}, 2 expected")
            break
        size = (((data[pos + 2] << 8) | data[pos + 3]) + 1) * 4
        end = pos + size
        if end > n:
            problems.append(f"byte {pos}: RTCP packet claims {size} bytes, {n - pos} left")
            end = n  # read what is there
        if ptype == APP and end - pos >= 12 and data[pos + 8:pos + 12] in PROTOS:
            stop = end
            if first & 0x20 and end == pos + size and stop > pos + 12:  # padding: its count is the last byte
                stop = max(pos + 12, stop - data[stop - 1])
            app = data[pos + 8:pos + 12]
            subtype = first & 0x1F
            found.append(FloorMessage(
                PROTOS[app], app.decode(), _message_name(app, subtype), subtype,
                int.from_bytes(data[pos + 4:pos + 8], "big"), _fields(app, data, pos + 12, stop, problems),
                frames, time, src, dst))
        pos = end
    if pos < n and packets >= MAX_PACKETS:
        problems.append(f"more than {MAX_PACKETS} RTCP packets in one datagram: the rest is not read")
    return found, problems
