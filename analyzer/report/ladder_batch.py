"""The ladders of many UE sessions of one capture at once (``analyze --format html``, ``--pcap-dir``).

Each message is handed to the sessions it can belong to in one pass over the capture's messages, through
indexes by frame and Call-ID, so drawing 2 000 UEs costs one walk, not 2 000; ``build_ladder`` then
chooses among each session's few candidates exactly as for one session.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.engines import DecodeOptions
from analyzer.meaning.analysis import CaptureAnalysis
from analyzer.meaning.sessions import UeSession
from analyzer.messages.floor import FloorMessage
from analyzer.messages.records import Message
from analyzer.report.ladder import Ladder, build_ladder, collect_messages, session_frames
from analyzer.transport.records import TlsHello


def candidates(sessions: Iterable[UeSession],
               messages: Iterable[Message | FloorMessage | TlsHello]) -> dict[str, list]:
    """Session id → the messages its ladder may show (a superset of ``build_ladder``'s choice), in order:
    those sharing a frame or a Call-ID with its events, and the HTTP answers to those."""
    by_frame: dict[int, list[str]] = {}
    by_call: dict[str, list[str]] = {}
    out: dict[str, list] = {}
    for s in sessions:
        out[s.id] = []
        frames, call_ids = session_frames(s)
        for f in frames:
            by_frame.setdefault(f, []).append(s.id)
        for c in call_ids:
            by_call.setdefault(c, []).append(s.id)
    taken: dict[int, set[str]] = {}  # frame of a message handed out → the sessions that got it
    for m in messages:
        frames = (m.frame,) if isinstance(m, TlsHello) else m.frames
        owners = {sid for f in frames for sid in by_frame.get(f, ())}
        if isinstance(m, Message):  # (a floor message goes only where a floor event cites its frame)
            owners.update(by_call.get(m.call_id, ()) if m.call_id else ())
            owners.update(taken.get(m.reply_to, ()) if m.reply_to is not None else ())
        for sid in owners:
            out[sid].append(m)
        if owners:
            for f in frames:
                taken.setdefault(f, set()).update(owners)
    return out


def capture_ladders(analysis: CaptureAnalysis, procedures: list[dict], engine: str = "dpkt",
                    options: DecodeOptions | None = None, only: set[str] | None = None) -> list[Ladder]:
    """The ladder of every UE session of a capture, or of the sessions named in ``only`` (one extra decode
    for all of them, unless the analysis kept its messages)."""
    sessions = [s for s in analysis.sessions if only is None or s.id in only]
    if not sessions:
        return []
    chosen = candidates(sessions, collect_messages(analysis, engine, options, sessions))
    return [build_ladder(analysis, s, chosen[s.id], procedures) for s in sessions]
