"""Province files: effective indicator sets, and every kind of invalid file refused at its line."""

import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from core import indicators as lib
from core.errors import ConfigurationError
from core.settings import Settings
from features.custom import evaluate, formula_names
from features.provinces import EXAMPLES_DIR, load_province, read_province
from telcoml import cli
from telcoml.cli import app

runner = CliRunner()
MANDATORY = [i.id for i in lib.credit_indicators("mandatory")]


def _write(tmp_path, text: str, name: str = "GD.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _refused(tmp_path, text: str, name: str = "GD.yaml") -> str:
    with pytest.raises(ConfigurationError) as err:
        read_province(_write(tmp_path, text, name))
    return str(err.value)


def test_the_examples_differ_in_their_optional_sets_and_keep_the_mandatory_nine():
    gd, he = read_province(EXAMPLES_DIR / "GD.yaml"), read_province(EXAMPLES_DIR / "HE.yaml")
    gd_credit = [i.id for i in gd.effective_indicators("credit_grade")]
    he_credit = [i.id for i in he.effective_indicators("credit_grade")]
    assert set(MANDATORY) <= set(gd_credit) and set(MANDATORY) <= set(he_credit)
    assert "number_level" in gd_credit and "number_level" not in he_credit
    assert "double_refund_count_12m" in he_credit and "double_refund_count_12m" not in gd_credit
    assert "refund_to_bill_ratio" in gd_credit  # a custom indicator for the credit grade
    # an optional indicator a province does not choose leaves every one of its models
    assert "business_dependence" not in [i.id for i in gd.effective_indicators("churn")]
    assert "business_dependence" in [i.id for i in he.effective_indicators("churn")]
    assert [i.id for i in gd.effective_indicators("tariff_sensitivity")] == [
        i.id for i in gd.effective_indicators("sensitivity")
    ]
    assert gd.drift_thresholds == {
        "drifted_feature_share": 0.3,
        "prediction_drift_score": 0.1,
        "quality_drop": 0.1,
    }
    assert gd.guidance[5].zh.startswith("钻石级")


def test_no_file_means_the_group_set(tmp_path):
    assert load_province(Settings(workdir=tmp_path), "SC") is None


@pytest.mark.parametrize(
    "body, line, words",
    [
        (
            "optional_indicators:\n  - number_level\n  - infuence\n",
            4,
            [
                "unknown indicator 'infuence'",
                "did you mean 'influence'",
                "valid optional indicators: number_level",
            ],
        ),
        (
            "drop_indicators: [tenure_months]\n",
            2,
            ["'tenure_months'", "mandatory and cannot be dropped", *MANDATORY],
        ),
        ("optional_indicators: [brand]\n", 2, ["'brand' is one of the nine mandatory", "always used"]),
        ("optional_indicators: [terminal_class]\n", 2, ["not an optional credit indicator"]),
        (
            "drift_thresholds:\n  drifted_feature_share: 0.3\n  psi: 0.2\n",
            4,
            [
                "unknown drift threshold 'psi'",
                "drifted_feature_share, prediction_drift_score, quality_drop, indicator_drift_score",
            ],
        ),
        ("drift_thresholds:\n  drifted_feature_share: 3\n", 2, ["between 0 and 1"]),
        ("grade_cutoffs: [3, 2, 1, 4]\n", 2, ["four increasing numbers"]),
        ("guidance:\n  7: {en: x, zh: y}\n", 3, ["guidance.7"]),
        ("colour: red\n", 2, ["unknown key 'colour'"]),
        (
            "custom_indicators:\n  - id: ratio\n    name_zh: 比\n    name_en: r\n    definition: d\n"
            "    formula: refund_amount_12m / (fees + 1)\n",
            7,
            ["unknown name 'fees'"],
        ),
        (
            "custom_indicators:\n  - id: ratio\n    name_zh: 比\n    name_en: r\n    definition: d\n"
            "    formula: __import__('os').system('ls')\n",
            7,
            ["not allowed"],
        ),
        (
            "custom_indicators:\n  - id: brand\n    name_zh: 比\n    name_en: r\n"
            "    definition: d\n    column: b\n",
            3,
            ["already a library indicator"],
        ),
        (
            "custom_indicators:\n  - id: ratio\n    name_zh: 比\n    name_en: r\n    definition: d\n",
            3,
            ["exactly one of 'formula' or 'column'"],
        ),
        (
            "custom_indicators:\n  - id: ratio\n    name_zh: 比\n    name_en: r\n"
            "    definition: d\n    column: c\n"
            "    tasks: [credit, churn]\n",
            8,
            ["unknown task 'credit'"],
        ),
        (
            "custom_indicators:\n  - id: ratio\n    name_zh: 比\n    name_en: r\n    definition: d\n"
            "    formula: usage.colour + 1\n",
            7,
            ["usage.colour is not a numeric column"],
        ),
    ],
)
def test_an_invalid_file_is_refused_at_its_line(tmp_path, body, line, words):
    message = _refused(tmp_path, "province: GD\n" + body)
    assert message.startswith(f"{tmp_path / 'GD.yaml'}:{line}: "), message
    for word in words:
        assert word in message, message


def test_broken_yaml_wrong_province_and_a_misnamed_file_are_refused(tmp_path):
    assert ":3: not valid YAML" in _refused(tmp_path, "province: GD\noptional_indicators: [number_level\n")
    assert "unknown province 'XX'" in _refused(tmp_path, "province: XX\n")
    message = _refused(tmp_path, "province: HE\n", name="GD.yaml")
    assert "GD.yaml:1:" in message and "name it HE.yaml" in message
    assert "expected a mapping" in _refused(tmp_path, "- just\n- a list\n")


def test_formulas_compute_column_wise_and_division_by_zero_is_empty():
    assert formula_names("refund_amount_12m / (arpu_3m + 1) + usage.mms_count") == [
        "refund_amount_12m",
        "arpu_3m",
        "usage.mms_count",
    ]
    values = {"refund_amount_12m": np.array([10.0, 0.0, 5.0]), "arpu_3m": np.array([4.0, 0.0, -1.0])}
    out = evaluate("refund_amount_12m / (arpu_3m + 1) + max(arpu_3m, 1) + (arpu_3m > 2)", values)
    assert out[0] == pytest.approx(10 / 5 + 4 + 1) and out[1] == pytest.approx(0 + 1)
    assert np.isnan(out[2])  # 5 / 0


@pytest.fixture()
def provinces_dir(tmp_path):
    directory = tmp_path / "provinces"
    directory.mkdir()
    for code in ("GD", "HE"):
        (directory / f"{code}.yaml").write_text((EXAMPLES_DIR / f"{code}.yaml").read_text())
    return directory


def test_cli_shows_a_province_effective_set_and_validates(tmp_path, provinces_dir, monkeypatch):
    monkeypatch.setattr(cli.console, "width", 300)
    result = runner.invoke(app, ["indicators", "--province", "GD", "--workdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "退费消费比" in text and "Refunds relative to spending" in text and "custom" in text
    assert "号码级别" in text and "optional (chosen)" in text and "投诉处理满意度" in text
    assert "not used by this province: business_dependence (业务依赖度)" in text
    he = runner.invoke(
        app, ["indicators", "--province", "HE", "--task", "credit_grade", "--workdir", str(tmp_path)]
    )
    table, _, dropped = he.output.partition("not used by this province")
    assert "双返次数" in table and "号码级别" not in table and "号码级别" in dropped
    ok = runner.invoke(app, ["province", "validate", "--workdir", str(tmp_path)])
    assert ok.exit_code == 0 and "credit_grade_gd_v1" in ok.output and "credit_grade_he_v1" in ok.output
    (provinces_dir / "HE.yaml").write_text("province: HE\ndrop_indicators: [brand]\n")
    bad = runner.invoke(app, ["province", "validate", "HE", "--workdir", str(tmp_path)])
    assert bad.exit_code == 1 and "HE.yaml:2:" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["indicators", "--province", "SC", "--workdir", str(tmp_path)])
    assert missing.exit_code == 1 and "no province file for SC" in missing.output
