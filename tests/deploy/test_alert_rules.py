"""The alert rules (deploy/prometheus/alerts.yml) are valid Prometheus rules, fire as their unit
tests say (`promtool test rules`), and name only metrics Kassa serves and documents."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: ./dev setup installs it (apt-get install prometheus)"
    return subprocess.run(  # noqa: S603 - a fixed tool and our own files
        [promtool, *args], cwd=RULES, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every rule has a unit test that expects it to fire (or, once, not to).
    rules = set(re.findall(r"^\s+- alert: (\w+)$", (RULES / "alerts.yml").read_text(), re.M))
    tested_names = set(
        re.findall(r"alertname: (\w+)$", (RULES / "alerts_test.yml").read_text(), re.M)
    )
    assert rules == tested_names


def test_every_metric_a_rule_reads_is_documented() -> None:
    named = set(re.findall(r"\b(kassa_[a-z_]+)", (RULES / "alerts.yml").read_text()))
    documented = set(
        re.findall(r"^\| `(kassa_[a-z_]+)`", (ROOT / "docs" / "operations.md").read_text(), re.M)
    )
    # A histogram is documented once, by its base name; rules read its _count, _sum, _bucket.
    base = {re.sub(r"_(count|sum|bucket)$", "", name) for name in named - documented}
    assert base <= documented, base - documented
