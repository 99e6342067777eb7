import json

from click.testing import CliRunner

from supportbridge.cli import main


def test_bench_kb_prints_its_figures_once_as_one_json_line() -> None:
    result = CliRunner().invoke(main, ["bench", "kb", "--articles", "20", "--queries", "10"])

    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    figures = json.loads(lines[0])
    assert figures["articles"] == 20 and figures["queries"] == 10
    assert 0.0 <= figures["top1_accuracy"] <= 1.0
