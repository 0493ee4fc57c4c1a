"""Change detection: the content hash of what would be embedded.

``content_hash(text, templates_version, embedding_version)`` is the sha256 (hex) of
the templated text together with the two versions that decide what a vector for that
text looks like. The processor embeds an entity only when this hash differs from the
one stored online for it: an edit to a field the template does not read (a view count,
a recruiter note) renders the same text, hashes the same and costs no inference.

The versions are part of the hash because equal text is not an equal embedding under
another template or another model: a new ``TEMPLATES_VERSION`` or embedding version
must re-embed everything, without anyone clearing the stored hashes.

The three parts are encoded as a JSON array (ASCII, escapes included) before hashing, so no choice of strings
can make two different triples hash the same input (``("a|b", "c")`` vs ``("a", "b|c")``).
"""

from __future__ import annotations

import hashlib
import json


def content_hash(text: str, templates_version: str, embedding_version: str) -> str:
    """sha256 hex digest of (templated text, templates version, embedding version)."""
    for name, value in (
        ("text", text),
        ("templates_version", templates_version),
        ("embedding_version", embedding_version),
    ):
        if not isinstance(value, str):
            raise TypeError(f"content_hash: {name} must be a str, got {type(value).__name__} ({value!r:.80})")
    payload = json.dumps([templates_version, embedding_version, text])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
