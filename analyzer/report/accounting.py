"""Where every packet went, for people (a few lines) and for JSON: so "nothing found" is never ambiguous.

From one decode's ``DecodeStats``: the packet accounting (each packet's fate, see
``analyzer.engines.FATES``), the TLS flows and IPsec ESP packets whose messages could not be read, and where
reading stopped when the capture is damaged. ``summary_lines`` orders them as every command prints them:
where reading stopped first, then the accounting, then TLS, then ESP.

Every text function takes either the ``DecodeStats`` or the JSON form (``accounting_dict``, as a report
holds it), so the terminal, the text report and the JSON always say the same.
"""

from __future__ import annotations

from analyzer.engines import FATES, DecodeStats, ReadStop

#: The fates every engine reports, in the order the text line names them.
_CORE = ("signalling", "media", "other", "diagnostic")
_SERVERS_SHOWN = 5
_SPIS_SHOWN, _PEERS_SHOWN = 4, 2

Accounting = DecodeStats | dict


def accounting_dict(stats: Accounting) -> dict:
    """The JSON form: ``total`` packets, ``fates`` (fate → packets, adding up to ``total`` once the
    capture was read to its end; empty if it was not decoded to its end), the SIP/HTTP ``messages``,
    ``tls_flows`` (ClientHellos), ``tls_servers`` (server → ClientHellos), ``tls_keylog`` (a key log
    was used: those flows are the ones it did not open), ``esp`` (IPsec ESP packets not opened: packets,
    SPIs, peers, whether keys were given) when there were any and, for a damaged capture, ``stopped``;
    ``messages.floor_control`` counts the MC media-plane control messages when there were any."""
    if isinstance(stats, dict):
        return stats
    accounting = stats.accounting
    fates = {fate: accounting[fate] for fate in FATES if fate in accounting}
    fates.update((fate, n) for fate, n in accounting.items() if fate not in fates)
    out = {"total": stats.packets, "fates": fates,
           "messages": {"sip": stats.sip_messages, "http": stats.http_messages},
           "tls_flows": stats.tls_hellos, "tls_servers": dict(stats.tls_servers),
           "tls_keylog": stats.tls_keylog}
    if stats.floor_messages:  # MC media-plane control messages, when there were any
        out["messages"]["floor_control"] = stats.floor_messages
    if stats.esp:
        out["esp"] = stats.esp
    if stats.stopped is not None:
        out["stopped"] = stats.stopped.as_dict()
    return out


def accounting_text(stats: Accounting) -> str:
    """E.g. ``72 packets: 42 signalling (40 SIP, 2 HTTP messages), 25 media, 5 other, 0 with a
    diagnostic``."""
    acc = accounting_dict(stats)
    packets = _plural(acc["total"], "packet")
    fates = acc["fates"]
    if not fates:
        return f"{packets} read"
    parts = [f"{fates.get('signalling', 0)} signalling ({_carried(acc)})",
             # the tshark engine does not tell media from other traffic: no false "0 media"
             *(f"{fates[fate]} {fate}{_floor(acc) if fate == 'media' else ''}" for fate in ("media", "other")
               if fate in fates),
             f"{fates.get('diagnostic', 0)} with a diagnostic"]
    parts += [f"{n} {fate}" for fate, n in fates.items() if fate not in _CORE and n]
    return f"{packets}: {', '.join(parts)}"


def _floor(acc: dict) -> str:
    """`` (3 floor control messages)`` after the media count, when it carried MC media-plane control."""
    n = acc["messages"].get("floor_control", 0)
    return f" ({_plural(n, 'floor control message')})" if n else ""


def tls_text(stats: Accounting) -> str | None:
    """The TLS flows seen (ClientHellos, by server name), and what it would take to read them; None
    when there were none."""
    acc = accounting_dict(stats)
    count = acc.get("tls_flows", 0)
    if not count:
        return None
    flows = _plural(count, "TLS flow")
    servers = sorted(acc["tls_servers"].items(), key=lambda item: (-item[1], item[0]))
    names = [name if n == 1 else f"{name} ×{n}" for name, n in servers[:_SERVERS_SHOWN]]
    if len(servers) > _SERVERS_SHOWN:
        names.append(f"{len(servers) - _SERVERS_SHOWN} more")
    which = f" ({', '.join(names)})" if names else ""
    one = count == 1
    if acc.get("tls_keylog"):
        return f"{flows}{which}: the key log does not decrypt {'it' if one else 'them'}"
    return (f"{flows}{which}: encrypted, {'its' if one else 'their'} SIP/HTTP cannot be read — give "
            "--tls-keylog FILE")


def esp_text(stats: Accounting) -> str | None:
    """The IPsec ESP packets nobody could open, with their SPIs and peers, and what it would take to read
    them; None when there were none."""
    esp = accounting_dict(stats).get("esp")
    if not esp:
        return None
    spis = list(esp["spis"])
    shown = ", ".join(spis[:_SPIS_SHOWN]) + (f" and {len(spis) - _SPIS_SHOWN} more" if len(spis) > _SPIS_SHOWN
                                             else "")
    peers = [f"{a} and {b}" for a, b in esp["peers"][:_PEERS_SHOWN]]
    if len(esp["peers"]) > _PEERS_SHOWN:
        peers.append(f"{len(esp['peers']) - _PEERS_SHOWN} more pairs")
    between = f" between {'; '.join(peers)}" if peers else ""
    ask = ("the keys given with --esp-sa do not cover them" if esp.get("keys_given")
           else "give keys with --esp-sa FILE")
    return (f"SIP may be protected by IPsec ESP: {_plural(esp['packets'], 'packet')} in "
            f"SPI{'s' if len(spis) > 1 else ''} {shown}{between}; {ask}")


def stopped_text(stats: Accounting) -> str | None:
    """Where reading stopped, for a damaged capture; None when it was read to its end."""
    stopped = accounting_dict(stats).get("stopped")
    if stopped is None:
        return None
    return f"incomplete capture: {ReadStop.from_dict(stopped).text()}"


def summary_lines(stats: Accounting) -> list[str]:
    """Where reading stopped (if it did), the accounting, the TLS flows and ESP packets (if any): in this
    order."""
    lines = [stopped_text(stats), accounting_text(stats), tls_text(stats), esp_text(stats)]
    return [line for line in lines if line]


def _carried(acc: dict) -> str:
    sip, http = acc["messages"]["sip"], acc["messages"]["http"]
    if sip and http:
        text = f"{sip} SIP, {_plural(http, 'HTTP message')}"
    elif sip or http:
        text = _plural(sip, "SIP message") if sip else _plural(http, "HTTP message")
    else:
        text = "no SIP or HTTP message"
    if acc.get("tls_flows"):
        text += f"; {_plural(acc['tls_flows'], 'TLS flow')}"
    return text


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
