"""The header fields a transaction is matched on (RFC 3261 §17.1.3, §17.2.3): top Via, CSeq, tags, keys."""

from __future__ import annotations

import re

MAGIC = "z9hG4bK"  # the branch cookie of RFC 3261 peers

_TAG = re.compile(r";\s*+tag\s*+=\s*+([^;,\s>]++)", re.IGNORECASE)  # possessive: never rescans blanks


def tag_of(value: str | None) -> str | None:
    """The tag parameter of a From/To value (outside the <URI>)."""
    if not value:
        return None
    end = value.rfind(">")
    m = _TAG.search(value, end + 1 if end >= 0 else 0)
    return m.group(1) if m else None


def top_via(value: str | None) -> tuple[str | None, str | None]:
    """(sent-by, branch) of the top Via; sent-by with its default port made explicit (§18.2.1)."""
    if not value:
        return None, None
    parts = value.split(",", 1)[0].split(";")
    proto_sent_by = parts[0].split(None, 1)
    sent_by = None
    if len(proto_sent_by) > 1:
        sent_by = "".join(proto_sent_by[1].split()).lower()
        if sent_by.rfind(":") <= sent_by.rfind("]"):  # no port (a colon inside [IPv6] is not one)
            sent_by += ":5061" if proto_sent_by[0].upper().endswith("TLS") else ":5060"
    branch = None
    for param in parts[1:]:
        name, _, val = param.partition("=")
        if name.strip().lower() == "branch":
            branch = val.strip() or None
            break
    return sent_by, branch


def cseq_of(value: str | None) -> tuple[int | None, str | None]:
    if not value:
        return None, None
    parts = value.split()
    try:
        return int(parts[0]), (parts[1].upper() if len(parts) > 1 else None)
    except ValueError:
        return None, None


def loose_key(key: tuple) -> tuple:
    """A branch key without the sent-by: NATs and ALGs sometimes rewrite the Via port in one direction."""
    return key[1], key[3], key[4], key[5]


def challenge_key(tx) -> tuple:
    """What a retry with credentials shares with the challenged request (RFC 3261 §8.1.3.5, §22.2).

    REGISTER is the exception for the From tag: each REGISTER is a new request outside any dialog and
    gets a new tag (§8.1.1.3), only Call-ID and CSeq carry over between registrations (§10.2).
    """
    return (tx.call_id, tx.method, None if tx.method == "REGISTER" else tx.from_tag)


def match_key(branch, sent_by, call_id, cseq, from_tag, method) -> tuple:
    """What a request and its responses share (RFC 3261 §17.1.3, §17.2.3), the method last. The Call-ID
    too: a response must repeat its request's (§8.2.6.2), and Wireshark pairs them on it; a message that
    names another Call-ID belongs to another transaction even with the same branch. (So every message a
    transaction or a challenge links shares one Call-ID: ``analyzer.meaning.events.shard`` relies on it.)"""
    if branch and branch.startswith(MAGIC):
        return ("b", branch, sent_by, cseq, call_id, method)
    return ("c", call_id, cseq, from_tag, method)  # RFC 2543: no usable branch
