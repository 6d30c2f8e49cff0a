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
    # the credit grade's own words, not the VIP tier's (钻石级 mixed grade 5 with the diamond card)
    assert gd.guidance[5].complaint_handling.zh.startswith("信用极好")
    assert gd.guidance[5].gift_ceiling.value == 50 and gd.guidance[5].gift_ceiling.en is None


def _ids(config, task: str) -> list[str]:
    return [i.id for i in config.effective_indicators(task)]


def test_each_model_asks_only_for_its_own_indicators(tmp_path):
    churn_credit = [i.id for i in lib.for_task("churn") if i.credit_role == "mandatory"]
    config = read_province(
        _write(
            tmp_path,
            f"""
            province: GD
            optional_indicators: [influence]
            models:
              churn:
                drop_indicators: [{", ".join(churn_credit)}]
                add_indicators: [number_level, influence]   # an unchosen optional one, and a chosen one
              sensitivity:
                drop_indicators: [province]
            """,
        )
    )
    churn = _ids(config, "churn")
    assert not set(MANDATORY) & set(churn)
    assert {"number_level", "influence", "arpu_3m", "red_list_flag"} <= set(churn)
    assert "business_dependence" not in churn  # unchosen optional: out of every model unless added
    assert churn == [i for i in (x.id for x in lib.CATALOGUE) if i in churn]  # catalogue order
    assert "province" not in _ids(config, "tariff_sensitivity")
    assert _ids(config, "complaint_sensitivity") == _ids(config, "sensitivity")
    credit = _ids(config, "credit_grade")
    assert set(MANDATORY) <= set(credit) and "influence" in credit and "number_level" not in credit
    assert _ids(config, "channel_preference") == [i.id for i in lib.for_task("channel_preference")]
    assert config.models_withheld == {}


def test_a_mandatory_indicator_dropped_from_every_model_leaves_the_province_without_a_credit_grade(tmp_path):
    from core.tasks import TASKS
    from features.provinces import missing_indicators, trainable_models

    config = read_province(_write(tmp_path, "province: GD\ndrop_indicators: [brand, arpu_3m]\n"))
    assert config.models_withheld == {"credit_grade": ["brand"]}
    assert "brand" not in _ids(config, "churn") and "arpu_3m" not in _ids(config, "churn")
    assert "brand" in _ids(config, "credit_grade")  # the credit grade's contract keeps the nine
    with pytest.raises(
        ConfigurationError, match="province GD has no credit_grade model: its file drops brand"
    ):
        TASKS["credit_grade"].tailored(config)
    everything = [i.id for i in lib.CATALOGUE]
    missing = missing_indicators(config, everything)
    assert missing["credit_grade"] == ["brand"] and missing["churn"] == []
    assert trainable_models(config, everything) == [n for n in TASKS if n != "credit_grade"]
    # without a file, the group's sets
    assert missing_indicators(None, ["brand"], ["churn"])["churn"] == [
        i.id for i in lib.for_task("churn") if i.id != "brand"
    ]


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
            "models:\n  credit_grade:\n    drop_indicators: [tenure_months]\n",
            3,
            ["models.credit_grade", "'tenure_months'", "mandatory for the credit grade", *MANDATORY],
        ),
        (
            "models:\n  churn:\n    drop_indicators: [number_level]\n",
            3,
            ["models.churn", "'number_level' is not one of the churn model's indicators", "tenure_months"],
        ),
        (
            "models:\n  churn:\n    drop_indicators: [brand]\n    add_indicators: [brand]\n",
            3,
            ["models.churn", "both dropped and added: brand"],
        ),
        (
            "models:\n  churn:\n    add_indicators: [arpu_3m]\n",
            2,
            ["models", "churn.add_indicators: 'arpu_3m' is already one of the churn model's indicators"],
        ),
        (
            "drop_indicators: [arpu_3m]\nmodels:\n  churn:\n    add_indicators: [arpu_3m]\n",
            3,
            ["churn.add_indicators: 'arpu_3m' is dropped from every model by the top-level drop_indicators"],
        ),
        (
            "models:\n  churn:\n    add_indicators: [arpu3m]\n",
            4,
            ["models.churn.add_indicators.0", "unknown indicator 'arpu3m'", "did you mean 'arpu_3m'"],
        ),
        (
            "models:\n  chrun:\n    drop_indicators: [brand]\n",
            2,
            ["unknown model 'chrun'", "did you mean 'churn'", "credit_grade, sensitivity, churn"],
        ),
        (
            "models:\n  tariff_sensitivity:\n    drop_indicators: [brand]\n",
            2,
            ["'tariff_sensitivity' is one of the sensitivity models", "under 'sensitivity'"],
        ),
        (
            "models:\n  churn:\n    keep_indicators: [brand]\n",
            4,
            ["models.churn.keep_indicators", "unknown key 'keep_indicators'"],
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
    no_credit = runner.invoke(app, ["province", "validate", "HE", "--workdir", str(tmp_path)])
    text = " ".join(no_credit.output.split())
    assert no_credit.exit_code == 0, no_credit.output
    assert "no credit_grade model for HE: its file drops brand from every model" in text
    (provinces_dir / "HE.yaml").write_text(
        "province: HE\nmodels:\n  churn:\n    drop_indicators: [brand]\n    add_indicators: [number_level]\n"
    )
    tailored = runner.invoke(app, ["province", "validate", "HE", "--workdir", str(tmp_path)])
    assert tailored.exit_code == 0 and "per model churn: -brand +number_level" in tailored.output
    assert "no credit_grade model" not in tailored.output
    (provinces_dir / "HE.yaml").write_text(
        "province: HE\nmodels:\n  credit_grade:\n    drop_indicators: [brand]\n"
    )
    bad = runner.invoke(app, ["province", "validate", "HE", "--workdir", str(tmp_path)])
    assert bad.exit_code == 1 and "HE.yaml:3:" in bad.output and "Traceback" not in bad.output
    assert "mandatory for the credit grade" in bad.output
    missing = runner.invoke(app, ["indicators", "--province", "SC", "--workdir", str(tmp_path)])
    assert missing.exit_code == 1 and "no province file for SC" in missing.output
