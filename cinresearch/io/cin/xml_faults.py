"""Parse errors as messages that quote nothing from the file.

libxml2's own messages repeat text from the document after a fault — the unterminated CDATA
section (``CData section not finished\\nPRIV-12345``), both names of mismatched tags, the start
of a broken comment, an undeclared entity's name, an undefined namespace prefix. Any of that
can be a child's identifier, so a message is built here from the error's *code* only (its kind,
from a fixed table or libxml2's constant name) with the line and column; the library's message
text is never used.
"""

from __future__ import annotations

from lxml import etree

#: plain words for the faults met in practice; any other code is described by its libxml2 name
_KINDS: dict[str, str] = {
    "ERR_CDATA_NOT_FINISHED": "CDATA section not closed",
    "ERR_COMMENT_NOT_FINISHED": "comment not closed",
    "ERR_HYPHEN_IN_COMMENT": "'--' inside a comment",
    "ERR_TAG_NAME_MISMATCH": "end tag does not match its start tag",
    "ERR_TAG_NOT_FINISHED": "element not closed before the end of the file",
    "ERR_DOCUMENT_END": "extra content after the root element",
    "ERR_DOCUMENT_EMPTY": "no XML content",
    "ERR_NAME_REQUIRED": "invalid element name",
    "ERR_GT_REQUIRED": "'>' expected",
    "ERR_LTSLASH_REQUIRED": "end tag expected",
    "ERR_LT_IN_ATTRIBUTE": "'<' inside an attribute value",
    "ERR_ATTRIBUTE_NOT_STARTED": "attribute value not quoted",
    "ERR_ATTRIBUTE_NOT_FINISHED": "attribute value not closed",
    "ERR_ATTRIBUTE_WITHOUT_VALUE": "attribute without a value",
    "ERR_ATTRIBUTE_REDEFINED": "attribute given twice",
    "ERR_SPACE_REQUIRED": "space required",
    "ERR_UNDECLARED_ENTITY": "undeclared entity (an unescaped '&'?)",
    "WAR_UNDECLARED_ENTITY": "undeclared entity (an unescaped '&'?)",
    "ERR_ENTITYREF_SEMICOL_MISSING": "'&' not followed by an entity reference (an unescaped '&'?)",
    "ERR_NAME_REQUIRED_ENTITY": "'&' not followed by an entity reference (an unescaped '&'?)",
    "ERR_INVALID_CHAR": "character not allowed in XML",
    "ERR_INVALID_CHARREF": "character reference to a character not allowed in XML",
    "ERR_INVALID_ENCODING": "bytes not valid in the declared encoding",
    "ERR_UNSUPPORTED_ENCODING": "unsupported encoding",
    "ERR_INTERNAL_ERROR": "internal parser error",
    "ERR_RESOURCE_LIMIT": "a value or name longer than the parser's limit",
    "ERR_USER_STOP": "parsing stopped",
    "NS_ERR_UNDEFINED_NAMESPACE": "namespace prefix not declared",
    "NS_ERR_QNAME": "invalid qualified name",
    "ERR_PI_NOT_FINISHED": "processing instruction not closed",
    "ERR_RESERVED_XML_NAME": "XML declaration not at the start of the file",
    "ERR_MISPLACED_CDATA_END": "']]>' not allowed in text",
}


def fault_kind(code: int) -> str:
    """Words for a libxml2 error code; never text from the document."""
    try:
        name = etree.ErrorTypes._getName(code)  # noqa: SLF001 - lxml's code-to-name table
    except Exception:  # an unknown code
        name = None
    if not name:
        return f"parser error {code}"
    return _KINDS.get(name, name.removeprefix("ERR_").replace("_", " ").lower())


def describe_syntax_error(err: etree.XMLSyntaxError) -> tuple[int | None, str]:
    """(line, message) for a parse error: the kind of fault with line and column, no file text.

    iterparse reports some faults (e.g. an undeclared entity) as "no element found" at line 0;
    the parser's error log then holds the real one.
    """
    code = err.code
    line, column = err.position if err.position else (0, 0)
    if not line:
        entries = [e for e in err.error_log if e.level >= etree.ErrorLevels.ERROR]
        if entries:
            code, line, column = entries[-1].type, entries[-1].line, entries[-1].column
    where = f"line {line}, column {column}" if line else "position unknown"
    return (line or None), f"{fault_kind(code)}, {where}"
