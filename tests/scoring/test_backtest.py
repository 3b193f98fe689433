"""leadflow backtest FILE.csv --label COLUMN, as a person runs it (no database).

``data/history.csv`` holds 32 past leads built so that the demo rules give
known scores (hot 85 and 70, warm 50 and 40, cold 25, 15 and 0), with mixed
spellings of the outcome (yes/no, 1/0, won/lost, true/false, converted/not
converted), headers that need the aliases (E-mail, Job Title, Telephone) and
a message spanning two lines. Worked by hand:

    score  leads  converted        segment  leads  converted  rate   lift
       85      4          3        hot          6          4  66.7%  2.13x
       70      2          1        warm        10          4  40.0%  1.28x
       50      5          2        cold        16          2  12.5%  0.40x
       40      5          2        all         32         10  31.2%  1.00x
       25      6          1
       15      4          1        AUC = U / (P·N) = 172 / (10·22) = 0.782
        0      6          0        U = Σ over converted leads of (others lower + ½ others tied)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadflow.analysis.evaluation import auc
from leadflow.analysis.history import MappingError, parse_label, plan_history, view_of
from leadflow.cli import app
from leadflow.config import load_config
from leadflow.settings import get_settings

runner = CliRunner()
DATA = Path(__file__).parent / "data"
HISTORY = DATA / "history.csv"


@pytest.fixture(autouse=True)
def demo_rules(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The built-in demo config, whatever the environment says."""
    monkeypatch.delenv("LEADFLOW_CONFIG", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def backtest(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["backtest", *args])
    return result.exit_code, result.stdout, result.stderr


def test_backtest_prints_segments_auc_and_calibration() -> None:
    code, out, err = backtest(str(HISTORY), "--label", "Converted")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        f"{HISTORY}: 32 leads, 10 converted (base rate 31.2%), outcome column 'Converted'"
    )
    assert lines[1].startswith("  current: built-in demo config (9 rules, version ")
    table = "\n".join(lines[3:])
    assert (
        "segment    leads converted    rate    lift\n"
        "hot            6         4   66.7%   2.13x\n"
        "warm          10         4   40.0%   1.28x\n"
        "cold          16         2   12.5%   0.40x\n"
        "all           32        10   31.2%   1.00x\n"
        "\n"
        "AUC        0.782\n"
    ) in table
    assert (
        "score      leads avg score    rate\n"
        "0-19          10       6.0   10.0%\n"
        "20-39          6      25.0   16.7%\n"
        "40-59         10      45.0   40.0%\n"
        "60-79          2      70.0   50.0%\n"
        "80-100         4      85.0   75.0%\n"
    ) in table
    # The demo's two behaviour rules cannot match a CSV row: said once, by name.
    notes = [line for line in lines if line.startswith("Note:")]
    assert notes == [
        "Note: 2 behaviour rule(s) never match here (pricing-visits, case-study): a CSV file "
        "has no activity, so they add 0 points to every row."
    ]


def test_backtest_json_has_the_same_figures() -> None:
    code, out, err = backtest(str(HISTORY), "--label", "Converted", "--json")

    assert code == 0, err
    report = json.loads(out)
    assert (report["rows"], report["conversions"], report["base_rate"]) == (32, 10, 0.3125)
    [current] = report["rulesets"]
    assert current["name"] == "current"
    assert current["source"] == "built-in demo config"
    assert current["auc"] == pytest.approx(172 / 220)
    assert [(s["segment"], s["count"], s["conversions"]) for s in current["segments"]] == [
        ("hot", 6, 4),
        ("warm", 10, 4),
        ("cold", 16, 2),
        ("all", 32, 10),
    ]
    assert current["segments"][0]["rate"] == pytest.approx(4 / 6)
    assert current["segments"][0]["lift"] == pytest.approx((4 / 6) / (10 / 32))
    assert [(b["band"], b["count"], b["mean_score"]) for b in current["calibration"]] == [
        ("0-19", 10, 6.0),
        ("20-39", 6, 25.0),
        ("40-59", 10, 45.0),
        ("60-79", 2, 70.0),
        ("80-100", 4, 85.0),
    ]
    assert len(report["notes"]) == 1


def test_compare_shows_both_rule_sets_side_by_side(tmp_path: Path) -> None:
    # Decision makers only, 60 points: 16 leads warm (8 converted), 16 cold (2 converted).
    # AUC = (8 * (14 + 8/2) + 2 * (14/2)) / 220 = 158 / 220 = 0.718.
    other = tmp_path / "dm-only.yaml"
    other.write_text(
        "scoring:\n"
        "  rules:\n"
        "    - {id: dm, category: fit, points: 60,\n"
        "       when: {field: quality.seniority, in: [c_level, vp, director]}}\n"
    )

    code, out, err = backtest(str(HISTORY), "--label", "Converted", "--compare", str(other))

    assert code == 0, err
    assert f"  compare: {other} (1 rules, version " in out
    assert "hot            6         4   66.7%   2.13x  |        0         0       -       -" in out
    assert "warm          10         4   40.0%   1.28x  |       16         8   50.0%   1.60x" in out
    assert "cold          16         2   12.5%   0.40x  |       16         2   12.5%   0.40x" in out
    assert "AUC        0.782" + " " * 28 + "|    0.718" in out
    # Only the demo rules have behaviour rules.
    assert "Note: current: 2 behaviour rule(s)" in out
    assert "Note: compare:" not in out


def test_an_unreadable_outcome_names_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "leads.csv"
    bad.write_text(
        "email,message,won\n"
        'a@acme.io,"two\nlines",yes\n'  # lines 2-3
        "b@acme.io,hi,maybe\n"  # line 4
    )

    code, out, err = backtest(str(bad), "--label", "won")

    assert code == 2
    assert out == ""
    assert f"{bad}:4: column 'won': cannot read 'maybe' as an outcome" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label", "Outcome"], "--label: no column 'Outcome'"),
        (["--label", "Converted", "--map", "Job Title=rank"], "'rank' is not a lead field"),
        (["--label", "Converted", "--map", "Role=title"], "the file has no column 'Role'"),
    ],
)
def test_bad_columns_exit_2_naming_the_file(args: list[str], message: str) -> None:
    code, out, err = backtest(str(HISTORY), *args)

    assert code == 2
    assert out == ""
    assert str(HISTORY) in err
    assert message in err


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"email,won\n\xff@acme.io,1\n", [], "not UTF-8 text (byte 10)"),
        (b"", [], "empty file (a header row is needed)"),
        (b"email,won\n", [], "no rows after the header"),
        (b"email,won\na@acme.io,1\n", ["--region", "XX"], "--region 'XX': not a region code"),
    ],
)
def test_unreadable_files_exit_2(
    tmp_path: Path, content: bytes, args: list[str], message: str
) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)

    code, out, err = backtest(str(path), "--label", "won", *args)

    assert code == 2
    assert out == ""
    assert message in err


def test_an_invalid_compare_config_exits_2_with_its_line(tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("scoring:\n  thresholds: {warm: 80, hot: 50}\n")

    code, out, err = backtest(str(HISTORY), "--label", "Converted", "--compare", str(other))

    assert code == 2
    assert out == ""
    assert f"{other}:2: scoring.thresholds" in err


def test_the_config_option_chooses_the_rules(tmp_path: Path) -> None:
    config = tmp_path / "leadflow.yaml"
    config.write_text(
        "scoring:\n"
        "  rules:\n"
        "    - {id: phone, category: data_quality, points: 80,\n"
        "       when: {field: quality.phone_valid, equals: true}}\n"
    )

    code, out, err = backtest(str(HISTORY), "--label", "Converted", "--config", str(config))

    assert code == 0, err
    assert f"  current: {config} (1 rules, version " in out
    # 11 leads with a valid phone (H1, H2, W1), 6 of them converted: all hot.
    assert "hot           11         6   54.5%   1.75x" in out
    assert "Note:" not in out


def test_map_feeds_a_field_from_any_column(tmp_path: Path) -> None:
    source = tmp_path / "crm.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [("Role", "Mail", "Deal"), ("Chief Executive", "x@acme.io", "won")]
            + [("Intern", f"y{i}@gmail.com", "lost") for i in range(3)]
        )

    code, out, err = backtest(
        str(source), "--label", "Deal", "--map", "Role=title", "--map", "Mail=email", "--json"
    )

    assert code == 0, err
    [current] = json.loads(out)["rulesets"]
    # CEO at a business address: 25 + 15 = 40, warm; the interns' free addresses score 0.
    assert [(s["segment"], s["count"]) for s in current["segments"][:3]] == [
        ("hot", 0),
        ("warm", 1),
        ("cold", 3),
    ]
    assert current["auc"] == 1.0


def test_a_row_reads_as_validation_would_enrich_it() -> None:
    headers = ["E-mail", "Job Title", "Telephone", "Country", "utm_medium", "Seats", "won"]
    plan = plan_history(headers, ["Seats=answers.seats"], label="won")
    row = dict(
        zip(
            headers,
            ["Ana@Acme-Corp.com", "VP of Engineering", "030 901820", "Germany", "cpc", "40", "1"],
            strict=True,
        )
    )

    view = view_of(plan, row)

    assert view.fields["email"] == "Ana@acme-corp.com"
    assert view.fields["phone"] == "+4930901820"  # read with the country's region, as E.164
    assert view.fields["country"] == "DE"
    assert {k: view.quality[k] for k in ("email_kind", "seniority", "function")} == {
        "email_kind": "business",
        "seniority": "vp",
        "function": "engineering",
    }
    assert (view.quality["phone_valid"], view.quality["channel"]) == (True, "paid")
    assert view.quality["company_domain"] == "acme-corp.com"
    assert view.answers["seats"] == "40"
    assert view.answers["Job Title"] == "VP of Engineering"  # every column is an answer too
    assert "won" not in view.answers


def test_channel_is_left_empty_without_source_columns() -> None:
    plan = plan_history(["email", "won"], label="won")
    assert view_of(plan, {"email": "a@acme.io", "won": "1"}).quality["channel"] is None


def test_a_mapping_error_names_the_problem() -> None:
    with pytest.raises(MappingError, match="expected SRC=FIELD"):
        plan_history(["a", "won"], ["a"], label="won")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("Yes", True),
        ("WON", True),
        ("Closed Won", True),
        ("converted", True),
        ("true", True),
        ("0", False),
        ("no", False),
        ("Closed-Lost", False),
        ("not converted", False),
        ("", None),
        ("maybe", None),
        ("2", None),
    ],
)
def test_outcome_spellings(text: str, expected: bool | None) -> None:
    assert parse_label(text) is expected


def test_auc_counts_ties_half() -> None:
    assert auc([3, 2, 1], [True, False, False]) == 1.0
    assert auc([1, 2, 3], [True, False, False]) == 0.0
    assert auc([5, 5, 5, 5], [True, False, True, False]) == 0.5
    assert auc([5, 5, 1], [True, False, False]) == 0.75
    assert auc([1, 2], [True, True]) is None  # no lead that did not convert


def test_demo_rules_are_the_default() -> None:
    # The report's version is the demo rules' version: nothing else was loaded.
    from leadflow.scoring.engine import ruleset_version

    version = ruleset_version(load_config(None).scoring)
    code, out, _ = backtest(str(HISTORY), "--label", "Converted")
    assert code == 0
    assert f"version {version})" in out


def test_long_files_are_scored_in_worker_processes_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leadflow.analysis import backtest as module
    from leadflow.analysis.history import load_history

    rules = [module.RuleSet("current", "demo", load_config(None).scoring)]
    history = load_history(HISTORY, label="Converted")
    alone = module.backtest(history, rules)
    monkeypatch.setattr(module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(module, "CHUNK", 5)  # 7 chunks over 2 processes, results kept in order
    seen: list[int] = []

    shared = module.backtest(history, rules, jobs=2, progress=seen.append)

    assert shared.evaluations[0].scores == alone.evaluations[0].scores
    assert shared.as_dict() == alone.as_dict()
    assert sum(seen) == 32


def test_backtest_shows_where_the_routing_would_send_the_leads() -> None:
    code, out, err = backtest(str(HISTORY), "--label", "Converted", "--json")

    assert code == 0, err
    routing = {r["assignee"]: (r["leads"], r["conversions"]) for r in json.loads(out)["routing"]}
    segments = {s["segment"]: s["count"] for s in json.loads(out)["rulesets"][0]["segments"]}
    # the demo config: cold leads are not for a person, the rest go by country to the teams
    assert routing["queue:nurture"][0] == segments["cold"]
    assert sum(n for n, _ in routing.values()) == 32
    assert sum(c for _, c in routing.values()) == 10
    assert {"ana@example.com", "luca@example.com"} <= routing.keys()


def test_the_routing_distribution_is_the_same_in_worker_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from leadflow.analysis import backtest as module
    from leadflow.analysis.history import load_history

    config = load_config(None)
    rules = [module.RuleSet("current", "demo", config.scoring)]
    history = load_history(HISTORY, label="Converted")
    alone = module.backtest(history, rules, config=config)
    monkeypatch.setattr(module, "PARALLEL_MIN", 10)
    monkeypatch.setattr(module, "CHUNK", 40)  # one chunk: the round-robin turns match

    shared = module.backtest(history, rules, jobs=2, config=config)

    assert shared.routing == alone.routing
    assert "routing (current rules" in module.render(alone)
