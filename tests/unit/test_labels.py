"""OCI labels from git facts; source URLs never carry credentials."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from immu_action.core.labels import GitFacts, oci_labels, source_url


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/shop.git", "https://github.com/acme/shop"),
        ("https://x-access-token:ghs_SECRET@github.com/acme/shop.git",
         "https://github.com/acme/shop"),
        ("ssh://git@gitlab.example.com:2222/a/b.git", "https://gitlab.example.com/a/b"),
        ("https://git.example.com:8443/a/b", "https://git.example.com:8443/a/b"),
        ("/srv/git/repo.git", None),
        ("", None),
        (None, None),
    ],
)
def test_source_url(remote: str | None, url: str | None) -> None:
    assert source_url(remote) == url


def test_labels_from_facts() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    labels = oci_labels(
        GitFacts(sha="a" * 40, remote_url="git@github.com:acme/shop.git", version="v1.2.3"),
        created=when,
    )
    assert labels == {
        "org.opencontainers.image.created": "2026-01-02T01:04:05Z",
        "org.opencontainers.image.revision": "a" * 40,
        "org.opencontainers.image.source": "https://github.com/acme/shop",
        "org.opencontainers.image.version": "v1.2.3",
    }


def test_version_falls_back_to_short_sha_and_marks_dirty() -> None:
    labels = oci_labels(GitFacts(sha="b" * 40, dirty=True), created=datetime(2026, 1, 1))
    assert labels["org.opencontainers.image.version"] == "b" * 12 + "-dirty"
    assert "org.opencontainers.image.source" not in labels
