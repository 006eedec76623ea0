"""Text from untrusted sources (image metadata, file names) made safe to print on a terminal.

A PNG chunk can hold ESC sequences (clear the screen, set the window title, fake a prompt), BEL, C1
controls (0x9b is a CSI on some terminals) or bidi overrides that reverse what the reader sees. Human
output shows them as visible escapes (`\\x1b`, `\\u202e`) instead; newline and tab stay, since prompts
span lines.
"""

from __future__ import annotations

#: Bidi controls: embeddings/overrides U+202A-U+202E, isolates U+2066-U+2069, marks U+200E/U+200F and the
#: Arabic letter mark U+061C; plus the line/paragraph separators U+2028/U+2029, which some terminals break on.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C, 0x2028, 0x2029]


def _escape(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


#: str.translate table: C0 controls except newline and tab, DEL, C1 controls, bidi controls.
_TABLE: dict[int, str] = {
    code: _escape(code)
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI]
    if code not in (0x0A, 0x09)
}
#: The same characters for a JSON document (\\u escapes are JSON; C0 controls json.dumps escapes already).
_JSON_TABLE: dict[int, str] = {code: f"\\u{code:04x}" for code in [0x7F, *range(0x80, 0xA0), *_BIDI]}


def printable(text: str) -> str:
    """`text` with control and bidi characters shown as visible escapes (newline and tab kept).

    A backslash itself is left alone, so the result is for reading, not for parsing back.
    """
    return text.translate(_TABLE)


def escape_json(document: str) -> str:
    """A JSON document (as json.dumps(..., ensure_ascii=False) writes it) with DEL, C1 and bidi controls
    written as \\u escapes: the same JSON value once parsed, but inert on a terminal. (json.dumps escapes
    C0 controls itself; these it leaves raw when ensure_ascii=False.)"""
    return document.translate(_JSON_TABLE)
