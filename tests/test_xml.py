"""Hardened XML parsing and local-name access (analyzer/messages/xml.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analyzer.messages import xml
from analyzer.messages.parse import MalformedBody
from analyzer.messages.xml import XmlRejected, parse_xml, value

HOSTILE = sorted((Path(__file__).parent / "hostile").glob("*.xml"))

MCPTT_INFO_DEFAULT_NS = b"""<?xml version="1.0" encoding="UTF-8"?>
<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0">
 <mcptt-Params>
  <session-type>prearranged</session-type>
  <mcptt-request-uri type="Normal"><mcpttURI>sip:DEMO_group@mcx.example</mcpttURI></mcptt-request-uri>
  <mcptt-client-id type="Normal"><mcpttString>client-42</mcpttString></mcptt-client-id>
  <emergency-ind type="Normal"><mcpttBoolean>false</mcpttBoolean></emergency-ind>
  <unknown-future-element foo="bar">ignored</unknown-future-element>
 </mcptt-Params>
</mcpttinfo>"""

MCPTT_INFO_BARE = b"""<mcpttinfo><mcptt-Params>
 <session-type>private</session-type>
 <mcptt-request-uri>sip:bob@mcx.example</mcptt-request-uri>
</mcptt-Params></mcpttinfo>"""

MCPTT_INFO_PREFIXED = b"""<m:mcpttinfo xmlns:m="urn:3gpp:ns:mcpttInfo:1.0"><m:mcptt-Params>
 <m:session-type>chat</m:session-type>
 <m:mcptt-request-uri type="Normal"><m:mcpttURI> sip:grp@mcx.example </m:mcpttURI></m:mcptt-request-uri>
</m:mcptt-Params></m:mcpttinfo>"""

RESOURCE_LISTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cc="urn:ietf:params:xml:ns:copycontrol">
 <list>
  <entry uri="sip:bob@mcx.example" cc:copyControl="to"/>
  <entry uri="sip:carol@mcx.example"/>
 </list>
</resource-lists>"""


# --- hostile documents -------------------------------------------------------------------------------

def test_hostile_folder_holds_the_known_attacks():
    names = {p.name for p in HOSTILE}
    assert {"billion-laughs.xml", "quadratic-blowup.xml", "external-entity.xml", "deep-nesting.xml"} <= names


@pytest.mark.parametrize("path", HOSTILE, ids=[p.name for p in HOSTILE])
def test_hostile_xml_is_rejected_fast_with_one_line(path):
    data = path.read_bytes()
    started = time.process_time()
    with pytest.raises(XmlRejected) as caught:
        parse_xml(data)
    elapsed = time.process_time() - started
    assert elapsed < 1.0  # CPU seconds: refused before any expansion (an expanding parse takes minutes)
    reason = str(caught.value)
    assert reason and "\n" not in reason
    assert caught.value.code == "xml-rejected"


@pytest.mark.parametrize("name", ["billion-laughs.xml", "quadratic-blowup.xml", "utf16-doctype.xml",
                                  "external-entity.xml"])
def test_parser_settings_refuse_bombs_even_without_the_byte_scan(monkeypatch, name):
    # Defence in depth: with the DOCTYPE pre-scan disabled, lxml's settings and the doctype check still
    # refuse the document, quickly and without expanding anything.
    monkeypatch.setattr(xml, "_scan", lambda data: None)
    started = time.process_time()
    with pytest.raises(XmlRejected):
        parse_xml((Path(__file__).parent / "hostile" / name).read_bytes())
    assert time.process_time() - started < 1.0  # CPU seconds: nothing expanded


def test_external_entity_is_never_read():
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>')


def test_size_cap():
    with pytest.raises(XmlRejected, match="exceeds the 100-byte limit"):
        parse_xml(b"<a>" + b"x" * 200 + b"</a>", max_bytes=100)
    big = b"<a>" + b"x" * (xml.MAX_BYTES) + b"</a>"
    with pytest.raises(XmlRejected, match="limit"):
        parse_xml(big)


def test_depth_cap_is_configurable():
    doc = b"<a>" * 10 + b"</a>" * 10
    assert parse_xml(doc, max_depth=10).name == "a"
    with pytest.raises(XmlRejected, match="deeper than 9"):
        parse_xml(doc, max_depth=9)


def test_utf16_without_doctype_is_accepted():
    doc = '<?xml version="1.0" encoding="UTF-16"?><r><session-type>chat</session-type></r>'.encode("utf-16")
    assert parse_xml(doc).text("session-type") == "chat"


def test_bomless_utf16_is_refused():
    with pytest.raises(XmlRejected, match="BOM-less"):
        parse_xml("<r>x</r>".encode("utf-16-le"))


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0" encoding="UTF-16"?><a/>',  # claims UTF-16 but has no BOM: a lie to the scanner
    b'<?xml version="1.0" encoding="ebcdic-cp-us"?><a/>',
    '<?xml version="1.0" encoding="UTF-7"?><a/>'.encode("utf-16"),
])
def test_unexpected_declared_encodings_are_refused(data):
    with pytest.raises(XmlRejected, match="encoding"):
        parse_xml(data)


@pytest.mark.parametrize("data", [
    b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?><a>x</a>',
    b"<?xml version='1.0' encoding='iso-8859-1'?><a>x</a>",
    b"<a>x</a>",
])
def test_ordinary_encodings_are_accepted(data):
    assert parse_xml(data).text("a") == "x"


def test_not_well_formed_is_malformed_not_rejected():
    with pytest.raises(MalformedBody) as caught:
        parse_xml(b"<a><b></a>")
    assert not isinstance(caught.value, XmlRejected)
    assert caught.value.code == "malformed-body"
    assert "\n" not in str(caught.value)


def test_empty_body_is_malformed():
    with pytest.raises(MalformedBody):
        parse_xml(b"")


def test_predefined_entities_and_character_references_are_fine():
    assert parse_xml(b"<a>&lt;&#65;&amp;</a>").text("a") == "<A&"


def test_comments_and_processing_instructions_are_dropped():
    doc = parse_xml(b"<a><!-- c --><?pi x?><b>1</b></a>")
    assert [xml.local_name(e) for e in doc.root] == ["b"]


# --- access by local name ----------------------------------------------------------------------------

@pytest.mark.parametrize("data, session_type, uri", [
    (MCPTT_INFO_DEFAULT_NS, "prearranged", "sip:DEMO_group@mcx.example"),
    (MCPTT_INFO_BARE, "private", "sip:bob@mcx.example"),
    (MCPTT_INFO_PREFIXED, "chat", "sip:grp@mcx.example"),
], ids=["default-namespace", "no-namespace", "prefixed"])
def test_mcptt_info_variants_read_alike(data, session_type, uri):
    doc = parse_xml(data)
    assert doc.name == "mcpttinfo"
    assert doc.text("mcptt-Params", "session-type") == session_type
    assert doc.text("session-type") == session_type
    assert doc.text("mcptt-request-uri") == uri


def test_namespace_of_root():
    assert parse_xml(MCPTT_INFO_DEFAULT_NS).namespace == "urn:3gpp:ns:mcpttInfo:1.0"
    assert parse_xml(MCPTT_INFO_PREFIXED).namespace == "urn:3gpp:ns:mcpttInfo:1.0"
    assert parse_xml(MCPTT_INFO_BARE).namespace is None


def test_content_type_wrapper_and_plain_text_give_the_same_value():
    wrapped = parse_xml(b'<x type="Normal"><mcpttURI>sip:x</mcpttURI></x>')
    plain = parse_xml(b"<x>sip:x</x>")
    assert value(wrapped.root) == value(plain.root) == "sip:x"
    doc = parse_xml(MCPTT_INFO_DEFAULT_NS)
    assert doc.text("mcptt-client-id") == "client-42"
    assert doc.text("emergency-ind") == "false"
    assert doc.attr("mcptt-request-uri", name="type") == "Normal"


def test_mcvideo_and_mcdata_wrappers():
    assert parse_xml(b"<u><mcvideoURI>sip:v</mcvideoURI></u>").text("u") == "sip:v"
    assert parse_xml(b"<u><mcdataString>d</mcdataString></u>").text("u") == "d"


def test_non_wrapper_child_is_not_unwrapped():
    doc = parse_xml(b"<p><other>inner</other></p>")
    assert doc.text("p") == ""
    assert doc.text("p", "other") == "inner"


def test_protected_content_has_no_clear_value():
    doc = parse_xml(b'<r><mcptt-request-uri type="Protected"><EncryptedData xmlns="http://www.w3.org/2001/04/'
                    b'xmlenc#"><CipherData/></EncryptedData></mcptt-request-uri></r>')
    assert doc.text("mcptt-request-uri") == ""
    assert doc.attr("mcptt-request-uri", name="type") == "Protected"


def test_missing_element_gives_none():
    doc = parse_xml(MCPTT_INFO_DEFAULT_NS)
    assert doc.find("no-such") is None
    assert doc.text("mcptt-Params", "no-such") is None
    assert doc.attr("no-such", name="type") is None
    assert value(None) is None


def test_find_path_backtracks_to_a_later_match():
    # The first <a> has no <b>; the path must still find the <b> under the second <a>.
    doc = parse_xml(b"<r><a><c/></a><a><b>2</b></a></r>")
    assert doc.text("a", "b") == "2"


def test_findall_and_attributes_by_local_name():
    doc = parse_xml(RESOURCE_LISTS)
    entries = doc.findall("list", "entry")
    assert [xml.attr(e, "uri") for e in entries] == ["sip:bob@mcx.example", "sip:carol@mcx.example"]
    assert xml.attr(entries[0], "copyControl") == "to"  # namespaced attribute found by local name
    assert doc.attr("entry", name="uri") == "sip:bob@mcx.example"


def test_findall_has_no_duplicates_for_nested_matches():
    doc = parse_xml(b"<r><a><a><b>1</b></a></a></r>")
    assert [e.text for e in doc.findall("a", "b")] == ["1"]


def test_paths_through_nested_names_in_document_order():
    doc = parse_xml(b"<r><a><a><b>1</b><a><b>2</b></a></a><b>3</b></a><c><b>4</b></c>"
                    b"<a><c><b>5</b></c></a></r>")
    assert [e.text for e in doc.findall("a", "b")] == ["1", "2", "3", "5"]
    assert [e.text for e in doc.findall("a", "a", "b")] == ["1", "2"]
    assert [e.text for e in doc.findall("r", "a", "c", "b")] == ["5"]
    assert doc.findall("b", "a") == [] and doc.find("a", "a", "a", "a") is None
    inner = doc.find("a", "a")
    assert [e.text for e in xml.findall(inner, "a", "b")] == ["1", "2"]  # the node itself may be the first


def test_find_with_no_path_is_the_node_itself():
    doc = parse_xml(b"<r/>")
    assert doc.find() is doc.root
    assert doc.findall() == [doc.root]
