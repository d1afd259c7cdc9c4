"""The documentation names every event type: docs/webhooks.md lists each with a link to its
example, and docs/events.md has that example (issue 15's "Done when")."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kassa.events.catalog import CATALOG

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_webhooks_md_lists_every_event_type_and_nothing_else() -> None:
    listed = re.findall(
        r"^\| \[`([a-z_]+\.[a-z_]+)`\]\(events\.md#", (DOCS / "webhooks.md").read_text(), re.M
    )
    assert sorted(listed) == sorted(CATALOG)


def test_events_md_has_an_example_of_each_type() -> None:
    text = (DOCS / "events.md").read_text()
    headings = set(re.findall(r"^### `([a-z_]+\.[a-z_]+)`", text, re.M))
    assert headings == set(CATALOG)
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        example = json.loads(block)
        if isinstance(example, dict) and "type" in example and "subject" in example:
            assert example["type"] in CATALOG
            assert example["subject"]["kind"] == CATALOG[example["type"]].subject_kind
