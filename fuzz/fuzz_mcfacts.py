"""Harness: every MC fact extractor (``analyzer.meaning.mcfacts``) on a parsed SIP/HTTP message. They never
raise on hostile input; ``MalformedMessage`` (no message at all) is the only documented error."""

from __future__ import annotations

from fuzz import harness


def load():
    from analyzer.meaning import mcfacts
    from analyzer.messages.decode import to_message
    from analyzer.messages.parse import MalformedMessage
    from analyzer.transport.records import Payload

    def target(data: bytes) -> None:
        try:
            m, _ = to_message(Payload(data, (1,), 0.0, "10.0.0.1:5060", "10.0.0.2:5060", "tcp"))
        except MalformedMessage:
            return
        problems: list = []
        mcfacts.mc_service(m), mcfacts.mc_services(m)
        mcfacts.mc_info(m, problems), mcfacts.affiliation_set(m, problems)
        mcfacts.poc_settings(m, problems), mcfacts.recipients(m, problems)
        mcfacts.contacts(m), mcfacts.contact_facts(m), mcfacts.reasons(m), mcfacts.reason(m)
        mcfacts.warnings(m), mcfacts.xcap_target(m), mcfacts.token_request(m), mcfacts.bearer_token_claims(m)
        refer = mcfacts.refer_to(m)
        mcfacts.target_dialog(m), mcfacts.referred(m, refer, problems), mcfacts.media_endpoints(m, problems)
        for name in ("from", "to", "p-asserted-identity", "contact", "authorization"):
            text = m.headers.get(name)
            mcfacts.name_addr(text), mcfacts.domain_of(text), mcfacts.jwt_claims(text)
        mcfacts.uri_parts(m.uri), mcfacts.domain_of(m.uri)

    return target


if __name__ == "__main__":
    harness.main(load)
