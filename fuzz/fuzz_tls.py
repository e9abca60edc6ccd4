"""Harness: the TLS ClientHello reader (server name). ``TlsFormatError`` is ``parse_client_hello``'s
documented error; the incremental ``ClientHelloReader`` must turn everything into a diagnostic.
Input: a byte saying how to cut the stream, then the client's first bytes."""

from __future__ import annotations

from contextlib import suppress

from fuzz import harness


def load():
    from analyzer.base.diagnostics import Diagnostics
    from analyzer.transport.buffer import NEED_DATA
    from analyzer.transport.tls import ClientHelloReader, TlsFormatError, is_tls_record, parse_client_hello

    def target(data: bytes) -> None:
        if not data:
            return
        stream = data[1:]
        is_tls_record(stream)
        with suppress(TlsFormatError):
            parse_client_hello(stream)
        reader = ClientHelloReader(Diagnostics(), "10.0.0.1:40000", "10.0.0.2:443")
        for frame, piece in enumerate(harness.pieces(stream, data[0]), 1):
            reader.receive_data(piece, frame, frame * 0.01)
            while reader.next_message() is not NEED_DATA:
                pass
        reader.close()

    return target


if __name__ == "__main__":
    harness.main(load)
