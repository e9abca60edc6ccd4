"""Meaning: what decoded messages say in MC terms, and who is who.

SIP transactions and dialogs (``transactions``), MC facts of single messages (``mcfacts``), MC events and
publications (``events``), MC systems (``systems``), UE sessions linked across migration (``sessions``),
and ``analysis``, which runs one capture from decode to sessions. May import base, capture, transport,
messages and engines; never rules, report, run or cli.
"""
