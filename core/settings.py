"""One typed settings object; every path derives from the work directory.

Defaults run embedded (SQLite online store, DuckDB over local Parquet). Production
overrides by environment (``TELCOML_ONLINE_STORE=redis``, ``TELCOML_REDIS_URL=...``).
Importing this module has no side effects: nothing is created until a stage asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform settings, overridable by ``TELCOML_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TELCOML_", extra="ignore")

    workdir: Path = Field(Path("telcoml-work"), description="Everything a run writes lives here.")
    online_store: Literal["sqlite", "redis"] = "sqlite"
    redis_url: str = "127.0.0.1:6379"
    offline_store: Literal["duckdb", "file"] = "duckdb"
    engine: Literal["pandas", "spark"] = Field(
        "pandas",
        description="What computes indicators (`telcoml build`) and batch scores (`telcoml batch-score`): "
        "pandas on this machine, or Spark jobs (the production profile, `pip install 'telcoml[spark]'`).",
    )
    materialize: Literal["feast", "stream", "spark"] = Field(
        "feast",
        description="How `telcoml materialize` loads the latest snapshot online: Feast's materialize "
        "(a view's whole interval in memory at once), `stream` (record batches of bounded size: "
        "memory flat in the number of customers; the same rows and registry record), or `spark` "
        "(those batches written by Spark tasks, split by offline row group; Redis online store).",
    )
    spark_master: str = Field(
        "local[2]", description="Spark master URL: local[N], spark://host:7077, yarn, k8s://https://..."
    )
    spark_driver_memory: str = "2g"
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="More Spark settings as JSON, e.g. "
        '{"spark.executor.instances": "8", "spark.executor.cores": "4", "spark.executor.memory": "8g"}.',
    )
    spark_num_workers: int | None = Field(
        None, ge=1, description="XGBoost workers of a distributed fit (default: Spark's default parallelism)."
    )
    spark_customers_per_task: int = Field(
        100_000,
        ge=100,
        description="With engine=spark, the indicator build's unit of work: a province is cut into buckets "
        "of about this many customers: no task and not the driver holds more, whatever the province's size.",
    )
    spark_tuning_sample: int = Field(
        200_000,
        ge=1_000,
        description="With engine=spark, Optuna tunes on at most this many training rows (whole customers) "
        "in memory, and the credit scorecard is fitted on at most this many customers of its month; "
        "the final fits run over Spark on every row.",
    )
    spark_evaluation_sample: int = Field(
        200_000,
        ge=1_000,
        description="With engine=spark, the held-out rows (whole customers) that the driver collects to "
        "test the candidate, its baselines and the monitoring reference on: at most this many.",
    )
    project: str = "telcoml"
    mlflow_tracking_uri: str | None = Field(None, description="Default: SQLite in the work directory.")
    optuna_storage: str | None = Field(
        None,
        description="Default: SQLite in the work directory; "
        "postgresql+psycopg://... lets several workers tune one study.",
    )
    gate_margin: float = Field(
        0.002, description="A challenger must beat the champion's headline metric by this."
    )
    drifted_feature_share: float = Field(
        0.3,
        description="Weekly alert when at least this share of a model's indicators drifted "
        "(distance >= indicator_drift_score and significant at the week's size).",
    )
    prediction_drift_score: float = Field(
        0.15,
        description="Weekly alert when the prediction's drift distance reaches this and is "
        "significant at the week's size (seasonal months move it ~0.13, the drift month 0.2-0.5).",
    )
    quality_drop: float = Field(
        0.1,
        description="Weekly alert when the matured-label score falls this share below the "
        "champion's score on the province's own held-out customers, and the drop's interval "
        "excludes zero.",
    )
    indicator_drift_score: float = Field(
        0.1,
        description="The smallest Wasserstein / Jensen-Shannon distance of one indicator that "
        "counts as drift (the minimum effect the business cares about).",
    )
    outcome_rate_change: float = Field(
        0.3,
        description="Weekly alert when an event model's matured outcomes (churn) are this share "
        "above or below the rate it expected, and the binomial test is significant.",
    )
    alert_confidence: float = Field(
        0.95,
        gt=0.5,
        lt=1.0,
        description="How sure a weekly flag must be: p-values below 1 - this (Bonferroni over "
        "a model's indicators), quality-drop intervals at this level.",
    )
    record_flush_seconds: float = Field(
        30.0, description="Serving writes its monitoring records at least this often."
    )
    prepared_answers: bool = Field(
        True,
        description="/score answers from prepared answers (`telcoml prepare`) "
        "while they match the online indicators and champions; off: always live.",
    )
    auto_prepare: bool = Field(
        True,
        description="Prepare answers in the background after `telcoml materialize`, a new champion "
        "from `telcoml train`, and `POST /reload` (log: <workdir>/serving/prepare/prepare.log); "
        "0 for tests and CI.",
    )
    prepared_check_seconds: float = Field(
        15.0,
        description="How often the service re-reads the Feast registry "
        "for a new materialization (prepared answers stop being used on one).",
    )
    provinces_dir: Path | None = Field(
        None, description="Province files (GD.yaml, ...); default: <workdir>/provinces."
    )
    feedback_store_url: str | None = Field(
        None,
        description="Where the CRM's feedback events are kept. Default: SQLite in the work "
        "directory; production: postgresql+psycopg://...",
    )
    mlflow_ui_url: str = Field(
        "http://127.0.0.1:5000", description="The MLflow UI the console's model-health page links to."
    )
    evidently_ui_url: str = Field(
        "http://127.0.0.1:8000", description="The Evidently UI (`make evidently-ui`) the console links to."
    )

    @model_validator(mode="after")
    def _default_provinces_dir(self) -> Settings:
        # Province files: each province's choice of indicators, grades, guidance, drift thresholds.
        if self.provinces_dir is None:
            self.provinces_dir = self.workdir / "provinces"
        return self

    @property
    def raw_dir(self) -> Path:
        """Immutable raw operational tables, partitioned by table/province/month."""
        return self.workdir / "raw"

    @property
    def offline_dir(self) -> Path:
        """Indicator snapshots per feature view: the Feast offline store's files."""
        return self.workdir / "offline"

    @property
    def labels_dir(self) -> Path:
        """Labels a province brought with its own data (``telcoml byod``), one file per province."""
        return self.workdir / "labels"

    @property
    def truth_dir(self) -> Path:
        """Labels and the oracle's true probabilities: never features."""
        return self.workdir / "truth"

    @property
    def feature_repo_dir(self) -> Path:
        return self.workdir / "feature_repo"

    @property
    def reports_dir(self) -> Path:
        return self.workdir / "reports"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.workdir / 'mlflow.db').resolve()}"

    #: The work directory's MLflow artifact folder (``workdir:/mlartifacts/...`` in its own store).
    artifact_dir_name: ClassVar[str] = "mlartifacts"

    @property
    def artifact_root(self) -> Path:
        return (self.workdir / self.artifact_dir_name).resolve()

    @property
    def feedback_store(self) -> str:
        """The SQLAlchemy URL of the feedback store (``features.feedback``)."""
        return self.feedback_store_url or f"sqlite:///{(self.workdir / 'feedback.db').resolve()}"

    @property
    def study_storage(self) -> str:
        return self.optuna_storage or f"sqlite:///{(self.workdir / 'optuna.db').resolve()}"


def get_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides (e.g. from CLI options) on top."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
