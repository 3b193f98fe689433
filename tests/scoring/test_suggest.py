"""leadflow scoring suggest FILE.csv --label COLUMN, and backtest, on realistic synthetic leads.

Two sources of leads with a known outcome, neither needing a database:

- leadforge (PyPI), which simulates a B2B SaaS company's CRM: accounts,
  contacts with job titles, touches, sessions, opportunities, and whether the
  lead converted within 90 days. Its lead-scoring task table is joined with
  its contacts (job title, corporate or personal email domain) so the rules'
  enrichment has something to read. It also ships a deliberate leakage trap
  (``total_touches_all`` counts touches after the snapshot), which is what
  ``--exclude`` is for.
- ``synthetic_leads`` below, a logistic model whose weights we know, to check
  that the suggestion finds the fields that matter and ignores pure noise.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from leadflow.analysis.evaluation import auc
from leadflow.analysis.fitting import split
from leadflow.analysis.history import load_history
from leadflow.cli import app
from leadflow.config import load_config_text
from leadflow.config.scoring import Scoring
from leadflow.settings import get_settings

runner = CliRunner()
HISTORY = Path(__file__).parent / "data" / "history.csv"
LABEL = "converted_within_90_days"
LEAK = "total_touches_all"


@pytest.fixture(autouse=True)
def demo_rules(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("LEADFLOW_CONFIG", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def leadforge_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 leadforge leads (intro difficulty, seed 42) as one CSV with emails and titles."""
    import pandas as pd
    from leadforge.api import Generator

    folder = tmp_path_factory.mktemp("leadforge")
    bundle = Generator.from_recipe(
        "b2b_saas_procurement_v1", seed=42, exposure_mode="student_public"
    ).generate(n_leads=3000, difficulty="intro")
    bundle.save(str(folder / "bundle"))
    task = folder / "bundle" / "tasks" / LABEL
    leads = pd.concat(
        [pd.read_parquet(task / f"{part}.parquet") for part in ("train", "valid", "test")]
    )
    contacts = pd.read_parquet(folder / "bundle" / "tables" / "contacts.parquet")
    leads = leads.merge(
        contacts[["contact_id", "job_title", "email_domain_type"]], on="contact_id", how="left"
    )

    def email(contact: str, account: str, kind: Any) -> str:
        local = contact.replace("_", "")
        if kind == "corporate":
            return f"{local}@{account.replace('_', '-')}.com"
        return f"{local}@gmail.com" if kind == "personal" else ""

    leads["email"] = [
        email(c, a, k)
        for c, a, k in zip(leads.contact_id, leads.account_id, leads.email_domain_type, strict=True)
    ]
    path = folder / "leads.csv"
    leads.drop(columns=["email_domain_type"]).to_csv(path, index=False)
    return path


def suggest(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["scoring", "suggest", *args])
    return result.exit_code, result.stdout, result.stderr


def test_suggestion_on_leadforge_beats_chance_and_the_demo_rules(leadforge_csv: Path) -> None:
    code, out, err = suggest(str(leadforge_csv), "--label", LABEL, "--exclude", LEAK, "--json")

    assert code == 0, err
    result = json.loads(out)
    assert (result["rows"], result["train_rows"], result["holdout_rows"]) == (3000, 2100, 900)
    # Measured on the 900 held-out leads: the rules as printed, after rounding to points.
    assert result["auc"]["suggested"] >= 0.62
    assert result["auc"]["suggested"] >= result["auc"]["current"] + 0.08
    assert result["auc"]["suggested"] >= result["auc"]["model"] - 0.02  # rounding costs little
    # The block loads through the config schema and is what the JSON lists.
    scoring = load_config_text(result["yaml"], "suggested.yaml").scoring
    assert [r.id for r in scoring.rules] == [r["id"] for r in result["rules"]]
    assert 5 <= len(scoring.rules) <= 40
    assert all(re.fullmatch(r"suggested-[a-z0-9-]+", r.id) for r in scoring.rules)
    assert 1 <= scoring.thresholds.warm < scoring.thresholds.hot <= 100
    fields = {r.when.field for r in scoring.rules}
    assert f"answers.{LEAK}" not in fields  # excluded
    assert "answers.lead_id" not in fields  # an id has no value shared by enough leads
    assert "answers.lead_id" in result["skipped"]
    assert "answers.lead_created_at" in result["skipped"]  # dates are not a rule
    # Hot leads convert more than warm, warm more than cold, on held-out leads.
    hot, warm, cold, _ = result["holdout_segments"]
    assert hot["rate"] > cold["rate"]
    assert warm["rate"] > cold["rate"]


def test_the_leakage_trap_is_used_unless_excluded(leadforge_csv: Path) -> None:
    code, out, err = suggest(str(leadforge_csv), "--label", LABEL, "--json")

    assert code == 0, err
    fields = {r["when"]["field"] for r in json.loads(out)["rules"]}
    assert f"answers.{LEAK}" in fields


def test_the_printed_block_backtests_with_compare(leadforge_csv: Path, tmp_path: Path) -> None:
    code, out, err = suggest(str(leadforge_csv), "--label", LABEL, "--exclude", LEAK)
    assert code == 0, err
    assert out.startswith("# Suggested by `leadflow scoring suggest` from leads.csv")
    assert "\nscoring:\n  thresholds: {warm: " in out
    held_out = re.search(r"Held-out AUC: suggested rules (0\.\d{3}), current rules (0\.\d{3})", out)
    assert held_out is not None
    suggested = tmp_path / "suggested.yaml"
    suggested.write_text(out)  # the whole output, comments and all, is a config file

    result = runner.invoke(
        app,
        ["backtest", str(leadforge_csv), "--label", LABEL, "--compare", str(suggested), "--json"],
    )

    assert result.exit_code == 0, result.stderr
    current, compare = json.loads(result.stdout)["rulesets"]
    assert compare["source"] == str(suggested)
    assert compare["auc"] >= current["auc"] + 0.08  # on all 3,000 leads, training ones included


def test_backtest_on_leadforge_counts_every_lead(leadforge_csv: Path) -> None:
    result = runner.invoke(app, ["backtest", str(leadforge_csv), "--label", LABEL, "--json"])

    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    with leadforge_csv.open() as handle:
        outcomes = [row[LABEL] == "True" for row in csv.DictReader(handle)]
    assert (report["rows"], report["conversions"]) == (len(outcomes), sum(outcomes))
    [current] = report["rulesets"]
    segments = {s["segment"]: s for s in current["segments"]}
    assert sum(segments[s]["count"] for s in ("hot", "warm", "cold")) == 3000
    assert sum(segments[s]["conversions"] for s in ("hot", "warm", "cold")) == sum(outcomes)
    assert sum(b["count"] for b in current["calibration"]) == 3000
    # The job titles reach the demo's seniority rules: not everyone is cold.
    assert segments["warm"]["count"] + segments["hot"]["count"] > 300
    # Our Mann-Whitney AUC agrees with scikit-learn's on the same scores.
    from sklearn.metrics import roc_auc_score

    from leadflow.config import load_config
    from leadflow.scoring.engine import score

    rules = load_config(None).scoring
    history = load_history(leadforge_csv, label=LABEL)
    scores = [score(rules, view, _now()).score for view in history.views()]
    assert current["auc"] == pytest.approx(roc_auc_score(history.labels, scores))


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# -- a model whose answer we know ---------------------------------------------------------------

TITLES = {  # job title -> weight in the true model
    "CEO": 1.4,
    "VP Sales": 1.2,
    "Head of IT": 0.9,
    "Sales Manager": 0.2,
    "Software Engineer": -0.6,
    "Student": -1.2,
}
COLOURS = ("red", "green", "blue", "yellow")


def synthetic_leads(path: Path, n: int = 3000, seed: int = 11) -> list[float]:
    """Write ``n`` leads; return each lead's true log-odds of converting.

    log-odds = -1.2 + w(title) + 0.9·[employees ≥ 200] + 0.7·[business email]
    Employees are log-uniform between 1 and 5,000; the favourite colour is noise.
    """
    rng = random.Random(seed)
    logits = []
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "Job title", "Employees", "Favourite colour", "Won"])
        for i in range(n):
            title = rng.choice(list(TITLES))
            employees = int(math.exp(rng.uniform(0, math.log(5000))))
            business = rng.random() < 0.6
            logit = -1.2 + TITLES[title] + 0.9 * (employees >= 200) + 0.7 * business
            won = rng.random() < 1 / (1 + math.exp(-logit))
            domain = f"firm{i % 400}.com" if business else "gmail.com"
            writer.writerow(
                [f"p{i}@{domain}", title, employees, rng.choice(COLOURS), "won" if won else "lost"]
            )
            logits.append(logit)
    return logits


def test_suggestion_recovers_a_known_model(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.csv"
    truth = synthetic_leads(path)

    code, out, err = suggest(str(path), "--label", "Won", "--json")

    assert code == 0, err
    result = json.loads(out)
    scoring = Scoring.model_validate({"thresholds": result["thresholds"], "rules": result["rules"]})
    by_field: dict[str, list[Any]] = {}
    for rule in scoring.rules:
        by_field.setdefault(str(rule.when.field), []).append(rule)
    # Seniority read from the title, company size and the email's kind carry the signal,
    # in the true model's order: VP, CEO and Head of IT well above a manager.
    assert {"quality.seniority", "answers.Employees", "quality.email_kind"} <= set(by_field)
    seniority = {r.when.equals: r.points for r in by_field["quality.seniority"]}
    assert min(seniority["vp"], seniority["c_level"], seniority["director"]) > seniority.get(
        "manager", 0
    )
    assert "answers.Favourite colour" not in by_field  # noise earns no rule
    # Employees: ranges with round bounds (two significant digits); the largest companies,
    # from about 200 employees up, score more than the rest.
    ranges = sorted((r.when.between, r.points) for r in by_field["answers.Employees"])
    bounds = [b for r, _ in ranges if r is not None for b in r]
    assert all(float(f"{b + 1:.2g}") == b + 1 or float(f"{b:.2g}") == b for b in bounds)
    top, points = ranges[-1]
    assert top is not None
    assert 100 <= top[0] <= 2000
    assert points > 0
    # Held out, the rounded rules rank nearly as well as the true model itself.
    labels = load_history(path, label="Won").labels
    _, test = split(labels, 0.3, 7)
    best = auc([truth[i] for i in test], [labels[i] for i in test])
    assert best is not None
    assert result["auc"]["suggested"] >= best - 0.03
    assert result["auc"]["suggested"] >= 0.7


def test_without_scikit_learn_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "synthetic.csv"
    synthetic_leads(path, n=200)
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import fails

    code, out, err = suggest(str(path), "--label", "Won")

    assert code == 1
    assert out == ""
    assert "pip install 'leadflow[ml]'" in err


def test_too_few_outcomes_is_an_error_naming_the_file() -> None:
    code, out, err = suggest(str(HISTORY), "--label", "Converted")

    assert code == 2
    assert out == ""
    assert f"{HISTORY}: needs at least 20 converted and 20 not converted leads" in err
    assert "the file has 10 and 22" in err


def test_exclude_must_name_a_column() -> None:
    code, _, err = suggest(str(HISTORY), "--label", "Converted", "--exclude", "nope")

    assert code == 2
    assert "--exclude: no column 'nope'" in err
