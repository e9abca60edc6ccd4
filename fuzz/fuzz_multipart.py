"""Harness: multipart bodies (``body_parts``) and Content-Type parameters. Input: the Content-Type value,
a line feed, the body. ``MalformedBody`` is the documented error."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.messages.multipart import body_parts, find_part, parse_content_type
    from analyzer.messages.parse import MalformedBody

    def target(data: bytes) -> None:
        head, _, body = data.partition(b"\n")
        content_type = head.decode("utf-8", "replace")
        parse_content_type(content_type)
        try:
            parts = body_parts(content_type, body)
        except MalformedBody:
            return
        for part in parts:
            part.param("charset"), part.disposition, part.content_id
        find_part(parts, "mcptt-info+xml")

    return target


if __name__ == "__main__":
    harness.main(load)
