"""Hardened XML parsing and access by local name.

Bodies come from captures, so they are hostile until proven otherwise: any DTD or entity declaration is
refused before parsing (billion laughs, quadratic blow-up, external entities), as are oversize or too
deeply nested documents and unexpected encodings (UTF-7 can hide a DOCTYPE from a byte scan). The lxml
parser is additionally set never to resolve entities, load DTDs or touch the network.

Elements are found by local name whatever their namespace or prefix, since MC clients send
``mcptt-info`` with a default namespace, with a prefix, or with none. The one MC-specific piece is
``value()``, which unwraps the 3GPP "contentType" wrapper (``<X type="Normal"><mcpttURI>…``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

from lxml import etree

from analyzer.messages.parse import MalformedBody

__all__ = ["MAX_BYTES", "MAX_DEPTH", "WRAPPERS", "XmlDoc", "XmlRejected", "attr", "find", "findall",
           "local_name", "parse_xml", "value"]

MAX_BYTES = 1 << 20
MAX_DEPTH = 100


class XmlRejected(MalformedBody):
    """The hardened parser refused the document (DTD/entities, size, depth, encoding)."""

    code = "xml-rejected"


#: Declared encodings accepted, by the byte order mark found (None: no BOM, so ASCII-compatible). Anything
#: else (UTF-7, EBCDIC, a UTF-16 claim without BOM...) could disguise markup from the declaration scan.
_ENCODINGS: dict[str | None, frozenset[str]] = {
    None: frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}),
    "utf-16": frozenset({"utf-16", "utf-16le", "utf-16be"}),
    "utf-32": frozenset({"utf-32", "utf-32le", "utf-32be"}),
}
_DECLARED = re.compile(r"""<\?xml[^>]{0,200}?encoding\s*=\s*["']([^"']{1,40})["']""")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_FORBIDDEN = ("<!DOCTYPE", "<!ENTITY")
#: libxml2 errors that mean a limit or an entity, not a typo: reported as rejections.
_HOSTILE_ERRORS = ("depth", "entity", "amplification", "huge")


def parse_xml(data: bytes, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> XmlDoc:
    """Parse a body into an ``XmlDoc``.

    Raises ``XmlRejected`` (one-line reason) for hostile documents, and ``MalformedBody`` for documents that
    are merely not well-formed.
    """
    if len(data) > max_bytes:
        raise XmlRejected(f"XML body of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    _scan(data)
    parser = etree.XMLParser(  # one per call: cheap (< 1 µs), and lxml parsers are not thread-safe
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True, remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "syntax error"
        if any(word in reason.lower() for word in _HOSTILE_ERRORS):
            raise XmlRejected(f"XML refused: {reason}") from None
        raise MalformedBody(f"XML not well-formed: {reason}") from None
    if root is None:
        raise MalformedBody("XML body has no root element")
    if root.getroottree().docinfo.doctype:  # belt and braces behind the byte scan
        raise XmlRejected("XML with a DOCTYPE declaration refused")
    _check_depth(root, max_depth)
    return XmlDoc(root)


def _scan(data: bytes) -> None:
    """Refuse DTD and entity declarations before lxml sees them, in the encoding actually used."""
    head = data[:4]
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if encoding is None:
        if len(head) == 4 and 0 in head:
            raise XmlRejected("XML in a BOM-less UTF-16/32 encoding refused")
        # Latin-1 maps every byte to one character, so ASCII markup is found where it is in the bytes.
        text = data.removeprefix(codecs.BOM_UTF8).decode("latin-1")
    else:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            raise XmlRejected(f"XML body is not valid {encoding.upper()}") from None
    declared = _DECLARED.match(text.lstrip("\ufeff"), 0, 300)
    if declared and declared.group(1).lower() not in _ENCODINGS[encoding]:
        raise XmlRejected(f"XML encoding {declared.group(1)!r} refused")
    for word in _FORBIDDEN:
        if word in text:
            raise XmlRejected(f"XML with a {word[2:]} declaration refused")


def _check_depth(root: etree._Element, max_depth: int) -> None:
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > max_depth:
            raise XmlRejected(f"XML nested deeper than {max_depth} elements refused")
        stack.extend((child, depth + 1) for child in element)


# --- access by local name -----------------------------------------------------------------------------

def local_name(element: etree._Element) -> str:
    """The tag without its ``{namespace}``."""
    return element.tag.rpartition("}")[2]


def _matches(node: etree._Element, names: tuple[str, ...]) -> Iterator[etree._Element]:
    """Elements reached by the path, in document order, each once.

    One name is lxml's own search. A longer path is one walk that carries, per element, how many names
    its ancestors matched (the first name may be ``node`` itself): searching again under every match of
    the first name would revisit nested matches, up to depth ** len(names) times.
    """
    if len(names) == 1:
        yield from node.iter("{*}" + names[0])  # lxml wildcard: that local name in any namespace or none
        return
    last = len(names) - 1
    stack = [(node, 0)]
    while stack:
        element, done = stack.pop()
        name = local_name(element) if isinstance(element.tag, str) else None
        if done == last and name == names[last]:
            yield element
        elif done < last and name == names[done]:
            done += 1
        stack.extend((child, done) for child in reversed(element))


def find(node: etree._Element, *names: str) -> etree._Element | None:
    """The first element reached by the path of local names, each a descendant of the previous one.

    The first name may match ``node`` itself, so ``find(root, 'mcpttinfo')`` returns the root.
    """
    return next(_matches(node, names), None) if names else node


def findall(node: etree._Element, *names: str) -> list[etree._Element]:
    """Every element reached by the path of local names, in document order, without duplicates."""
    return list(_matches(node, names)) if names else [node]


#: 3GPP "contentType" wrapper children (24.379 F.1 and the MCVideo/MCData copies).
WRAPPERS = frozenset(prefix + kind for prefix, kind in
                     product(("mcptt", "mcvideo", "mcdata", "mc"), ("URI", "String", "Boolean", "Integer")))


def value(element: etree._Element | None) -> str | None:
    """The text of an element, or of its single wrapper child (``<mcpttURI>`` …), stripped.

    ``<mcptt-request-uri type="Normal"><mcpttURI>sip:x</mcpttURI></mcptt-request-uri>`` and
    ``<mcptt-request-uri>sip:x</mcptt-request-uri>`` both give ``'sip:x'``. None when the element is
    missing; ``''`` when it holds no text (e.g. ``type="Protected"`` encrypted content).
    """
    if element is None:
        return None
    children = list(element)
    if len(children) == 1 and local_name(children[0]) in WRAPPERS:
        element = children[0]
    return (element.text or "").strip()


def attr(element: etree._Element | None, name: str) -> str | None:
    """An attribute by local name, in no namespace first, else in any namespace."""
    if element is None:
        return None
    found = element.get(name)
    if found is None:
        suffix = "}" + name
        found = next((v for k, v in element.attrib.items() if k.endswith(suffix)), None)
    return found


@dataclass(frozen=True, slots=True)
class XmlDoc:
    """A parsed document; every lookup is by local names (see ``find``)."""

    root: etree._Element

    @property
    def name(self) -> str:
        """Local name of the root element."""
        return local_name(self.root)

    @property
    def namespace(self) -> str | None:
        return etree.QName(self.root).namespace

    def find(self, *names: str) -> etree._Element | None:
        return find(self.root, *names)

    def findall(self, *names: str) -> list[etree._Element]:
        return findall(self.root, *names)

    def text(self, *names: str) -> str | None:
        """``value()`` of the first element on the path: wrapper unwrapped, stripped; None if absent."""
        return value(find(self.root, *names))

    def attr(self, *names: str, name: str) -> str | None:
        """Attribute ``name`` of the first element on the path (``doc.attr('entry', name='uri')``)."""
        return attr(find(self.root, *names), name)
