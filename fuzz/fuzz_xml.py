"""Harness: the hardened XML parser and the lookups by local name the MC facts use. ``MalformedBody``
(and its ``XmlRejected``) is the documented error."""

from __future__ import annotations

from fuzz import harness

#: Element and attribute names the MC facts look for.
NAMES = ("mcptt-info", "mcptt-Params", "mcptt-request-uri", "mcptt-calling-user-id", "affiliation",
         "group", "status", "expires", "presence", "tuple", "person", "mcpttURI", "mcptt-client-id",
         "resource-lists", "list", "entry", "mcvideo-info", "mcdata-info", "anyExt", "poc-settings")


def load():
    from analyzer.messages.parse import MalformedBody
    from analyzer.messages.xml import attr, find, findall, local_name, parse_xml, value

    def target(data: bytes) -> None:
        try:
            doc = parse_xml(data)
        except MalformedBody:
            return
        _ = doc.name, doc.namespace
        for name in NAMES:
            found = doc.find(name)
            value(found)
            attr(found, "uri")
            doc.text(name)
            doc.attr(name, name="group")
        for element in findall(doc.root, "entry", "group", "affiliation"):
            local_name(element), value(element), attr(element, "status"), find(element, "anyExt")

    return target


if __name__ == "__main__":
    harness.main(load)
