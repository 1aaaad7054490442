"""Text hygiene shared by every output format; stdlib only.

``xml_safe`` is THE last step before any text is serialised (XML or JSON):
BeautifulSoup turns ``&#x0b;`` into a raw U+000B and sanitisers keep it, and
one such character makes feedgen refuse a whole feed. Keeping one function
for every format means RSS, Atom and JSON Feed always carry the same text.
"""

from __future__ import annotations

import re

# XML 1.0 §2.2 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
# Also dropped: C1 controls and the noncharacters U+FDD0..U+FDEF, which XML 1.0
# "discourages" (§2.2 note) and the W3C validator flags; surrogates (never valid
# in UTF-8, and Python lets lone ones through).
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Remove every code point that XML 1.0 forbids or discourages."""
    return _ILLEGAL.sub("", text)


def collapse_whitespace(text: str) -> str:
    """Runs of any whitespace become one space; ends are trimmed."""
    return " ".join(text.split())
