import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kb.evaluate import (
    DRAWS_THRESHOLD,
    THRESHOLDS,
    answered_stats,
    coverage_at_precision,
    expected_calibration_error,
    reliability,
    run_eval,
)
from supportbridge.kb_commands import kb

KB_ROWS = [
    ("how do I change my plan", "tariff"),
    ("I want another tariff", "tariff"),
    ("switch to a cheaper plan", "tariff"),
    ("Как сменить тариф", "tariff"),
    ("my router has no internet", "router"),
    ("wifi router is not working", "router"),
    ("the router keeps rebooting", "router"),
    ("Роутер не раздает интернет", "router"),
    ("how can I pay my bill", "payment"),
    ("pay for internet by card", "payment"),
    ("where do I pay", "payment"),
    ("Как оплатить интернет", "payment"),
]
TEST_ROWS = [
    ("change my plan please", "tariff"),
    ("router not working", "router"),
    ("pay the bill by card", "payment"),
    ("Хочу сменить тариф", "tariff"),
    ("what is the weather in Paris", "oos"),
]


def _csv(path: Path, rows) -> Path:
    path.write_text(
        "text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def files(tmp_path):
    return _csv(tmp_path / "kb.csv", KB_ROWS), _csv(tmp_path / "test.csv", TEST_ROWS), tmp_path


def test_eval_json_has_the_agreed_keys_and_a_101_point_curve(files):
    kb_csv, test_csv, tmp = files
    result = run_eval(kb_csv, test_csv, json_out=tmp / "out.json")
    written = json.loads((tmp / "out.json").read_text())
    assert set(written) == {
        "embeddings",
        "top1_accuracy",
        "coverage_at_precision",
        "ece",
        "reliability",
        "query_ms_p50",
        "query_ms_p99",
        "curve",
    }
    assert set(written["coverage_at_precision"]) == {"0.90", "0.95", "0.98"}
    assert len(written["curve"]) == 101
    assert [p["threshold"] for p in written["curve"]] == list(THRESHOLDS)
    assert set(written["curve"][0]) == {
        "threshold",
        "coverage",
        "precision",
        "oos_false_answer_rate",
    }
    assert written == json.loads(json.dumps(result))


def test_reliability_has_twenty_bands_and_judges_the_promise_from_0_8_only():
    confidence = np.array([0.12, 0.13, 0.82, 0.83, 0.84, 0.97, 0.99])
    right = np.array([False, False, True, True, False, True, True])
    bands = {band["low"]: band for band in reliability(confidence, right)}
    assert len(bands) == 20
    assert bands[0.1]["answers"] == 2 and bands[0.1]["honest"] is None
    assert bands[0.8]["right_share"] == pytest.approx(2 / 3) and bands[0.8]["honest"] is False
    assert bands[0.95]["honest"] is True
    assert bands[0.5]["answers"] == 0 and bands[0.5]["right_share"] is None


def test_a_confidence_of_exactly_one_falls_in_the_top_band():
    bands = reliability(np.array([1.0]), np.array([True]))
    assert bands[-1]["answers"] == 1


def test_at_threshold_zero_everything_is_answered(files):
    kb_csv, test_csv, _ = files
    first = run_eval(kb_csv, test_csv)["curve"][0]
    assert first["coverage"] == 1.0 and first["oos_false_answer_rate"] == 1.0


def test_answered_out_of_scope_question_counts_as_wrong():

    stats = answered_stats(
        0.5, np.array([0.9, 0.9]), np.array([True, False]), np.array([True, False])
    )
    assert stats == {
        "threshold": 0.5,
        "coverage": 1.0,
        "precision": 0.5,
        "oos_false_answer_rate": 1.0,
    }


def test_without_out_of_scope_questions_their_rate_is_null():

    stats = answered_stats(0.5, np.array([0.9]), np.array([True]), np.array([True]))
    assert stats["oos_false_answer_rate"] is None


def test_coverage_at_precision_takes_the_best_threshold():

    confidence = np.array([0.9, 0.8, 0.7, 0.6])
    right = np.array([True, True, False, True])
    in_scope = np.ones(4, dtype=bool)
    assert coverage_at_precision(0.95, confidence, right, in_scope) == 0.5
    assert coverage_at_precision(0.75, confidence, right, in_scope) == 1.0


def test_expected_calibration_error_is_zero_when_confidence_matches_the_share_right():

    confidence = np.full(4, 0.75)
    assert expected_calibration_error(
        confidence, np.array([True, True, True, False])
    ) == pytest.approx(0.0)


def test_cli_prints_a_table_and_writes_json_and_plot(files):
    kb_csv, test_csv, tmp = files
    result = CliRunner().invoke(
        kb,
        [
            "eval",
            "--kb",
            str(kb_csv),
            "--test",
            str(test_csv),
            "--calibrate",
            str(test_csv),
            "--json",
            str(tmp / "o.json"),
            "--plot",
            str(tmp / "o.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "coverage at precision" in result.output and "threshold" in result.output
    assert "reliability" in result.output and "expected calibration error" in result.output
    assert (tmp / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((tmp / "o.json").read_text())["curve"]) == 101


def test_cli_measures_with_the_bundled_embeddings_when_asked(files):
    kb_csv, test_csv, tmp = files
    args = ["eval", "--kb", str(kb_csv), "--test", str(test_csv), "--embeddings", "bundled"]
    result = CliRunner().invoke(kb, [*args, "--json", str(tmp / "e.json")])
    assert result.exit_code == 0, result.output
    assert "multilingual-e5-small" in result.output
    assert "multilingual-e5-small" in json.loads((tmp / "e.json").read_text())["embeddings"]


def test_draws_give_each_seeds_figures_at_0_9_the_products_first(files):
    kb_csv, test_csv, _ = files
    result = run_eval(kb_csv, test_csv, draws=3)
    assert [draw["seed"] for draw in result["draws"]] == [0, 1, 2]
    at_threshold = result["curve"][round(DRAWS_THRESHOLD * 100)]
    first = result["draws"][0]
    assert first["threshold"] == DRAWS_THRESHOLD
    for key in ("coverage", "precision", "oos_false_answer_rate"):
        assert first[key] == at_threshold[key]
    assert all(isinstance(draw["bands_kept"], bool) for draw in result["draws"])


def test_one_draw_adds_nothing_to_the_figures(files):
    kb_csv, test_csv, _ = files
    assert "draws" not in run_eval(kb_csv, test_csv)


def test_cli_prints_each_draw_and_the_coverages_range(files):
    kb_csv, test_csv, _ = files
    args = ["eval", "--kb", str(kb_csv), "--test", str(test_csv), "--embeddings", "bundled"]
    result = CliRunner().invoke(kb, [*args, "--draws", "2"])
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("fold draws") :].splitlines()
    assert [line.split()[0] for line in table[2:4]] == ["0", "1"]
    assert table[4].startswith("coverage: mean")


def test_cli_names_each_bad_row_of_a_broken_file(files):
    kb_csv, _, tmp = files
    broken = tmp / "broken.csv"
    broken.write_text("text,label\n,tariff\nfine,tariff\nno label,\n", encoding="utf-8")
    result = CliRunner().invoke(kb, ["eval", "--kb", str(kb_csv), "--test", str(broken)])
    assert result.exit_code != 0
    assert "line 2: empty text" in result.output and "line 4: empty label" in result.output
