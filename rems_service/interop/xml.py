"""Untrusted XML in, proper XML out (INTEROP.md, "Untrusted input").

Parsing: lxml with DTD loading and validation, entity resolution and network access
off, no huge trees, comments and processing instructions dropped; any document type
declaration (where entity bombs and external entities live) is refused outright,
before and after parsing. Element names are then matched case-insensitively and
without regard to namespace (the mcode prototype lowercases them).
"""

from __future__ import annotations

import re

from lxml import etree

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)
_DOCTYPE = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class MalformedXml(Exception):
    """The body is not an XML document this front accepts; the message says why."""


def parse(body: bytes) -> etree._Element:
    """The document's root element; ``MalformedXml`` for a body that is not UTF-8, a DTD, an
    entity declaration, or a document that is not well formed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # SCRIPT messages are UTF-8; any other encoding would also hide a DOCTYPE from the scan below.
        raise MalformedXml("The body must be UTF-8 encoded XML.") from None
    if _DOCTYPE.search(text):
        raise MalformedXml("A document type declaration (DOCTYPE or ENTITY) is not accepted.")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedXml(f"The body is not well-formed XML: {exc.msg}.") from None
    info = root.getroottree().docinfo
    if getattr(info, "doctype", "") or getattr(info, "internalDTD", None) is not None:
        raise MalformedXml("A document type declaration (DOCTYPE or ENTITY) is not accepted.")
    return root


def name(element: etree._Element) -> str:
    """The element's local name in lower case (namespace dropped)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return etree.QName(tag).localname.lower()


def child(element: etree._Element | None, wanted: str) -> etree._Element | None:
    """The first child element named ``wanted`` (any case, any namespace)."""
    if element is None:
        return None
    wanted = wanted.lower()
    for candidate in element:
        if name(candidate) == wanted:
            return candidate
    return None


def path(element: etree._Element | None, steps: str) -> etree._Element | None:
    """The element at ``A/B/C`` below ``element`` (each step any case), or None."""
    for step in steps.split("/"):
        element = child(element, step)
    return element


def text(element: etree._Element | None, steps: str) -> str | None:
    """The stripped text at ``steps`` below ``element``; None when absent or empty."""
    found = path(element, steps)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None


def children(element: etree._Element | None) -> list[etree._Element]:
    """The child elements (no comments or text)."""
    if element is None:
        return []
    return [c for c in element if isinstance(c.tag, str)]


def attribute(element: etree._Element, wanted: str) -> str | None:
    """An attribute by name in any case (namespace dropped)."""
    wanted = wanted.lower()
    for key, value in element.attrib.items():
        if etree.QName(key).localname.lower() == wanted:
            return str(value)
    return None


def serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
