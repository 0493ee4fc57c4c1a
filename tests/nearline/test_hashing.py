"""The content hash: equal input, equal hash; any change to the text or a version, a new hash."""

from __future__ import annotations

import re

import pytest

from jude.nearline.hashing import content_hash


def test_is_sha256_hex_and_deterministic():
    h = content_hash("Resume:\nData engineer", "v1", "jude-embedder-3")
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == content_hash("Resume:\nData engineer", "v1", "jude-embedder-3")


def test_pinned_value():
    # Changing the encoding re-embeds every entity in production: do it only on purpose.
    assert content_hash("text", "v1", "e1") == "f34b7f9c0663c8d5ab8f4e8db4de2fd861fdb52c480fa6b6baafc348c8350f1f"


@pytest.mark.parametrize(
    "other",
    [
        ("text!", "v1", "e1"),  # the text changed
        ("text", "v2", "e1"),  # a new template version
        ("text", "v1", "e2"),  # a new embedding version
    ],
)
def test_each_part_changes_the_hash(other):
    assert content_hash(*other) != content_hash("text", "v1", "e1")


def test_parts_cannot_run_into_each_other():
    assert content_hash("a", "v1|", "e") != content_hash("a", "v1", "|e")
    assert content_hash('b", "c', "v1", "e") != content_hash("b", "v1", "c")


def test_any_unicode_text_hashes():
    assert content_hash("Zürich, 東京 \ud800", "v1", "e1") != content_hash("Zurich", "v1", "e1")


def test_non_text_is_refused_by_name():
    with pytest.raises(TypeError, match="embedding_version"):
        content_hash("text", "v1", 3)
