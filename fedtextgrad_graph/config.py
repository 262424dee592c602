"""Run configuration: pydantic models loaded from TOML, with errors that name the field."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "AggregationConfig",
    "BudgetConfig",
    "ClientConfig",
    "ConfigError",
    "ConvergenceConfig",
    "EvaluationConfig",
    "FedTextGradConfig",
    "FederationConfig",
    "FlowerSettings",
    "GuardConfig",
    "LocalTrainingConfig",
    "ModelPrice",
    "ModelSpec",
    "ModelsConfig",
    "ProcessSettings",
    "PromptConfig",
    "ReviewConfig",
    "RoleModels",
    "RunSettings",
    "ScreeningConfig",
    "SplitRanges",
    "TaskConfig",
    "TransportConfig",
    "format_validation_error",
    "load_config",
    "override_models",
    "parse_config",
    "read_toml",
]

DEFAULT_INSTRUCTION = "You will answer a reasoning question. Think step by step."
DEFAULT_FORMAT_INSTRUCTION = (
    "The last line of your response should be of the following format: "
    "'Answer: $VALUE' where VALUE is a numerical value."
)
ROLES = ("task", "optimizer", "aggregator", "judge")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_CLIENTS = 10_000
"""The most clients a federation may have: each gets its data share and site up front."""
MAX_SECONDS = 7 * 24 * 3600.0
"""The longest duration a setting may name (a week): more is a typo, or an infinity in disguise."""
DEFAULT_SUPERLINK_PORT = 9092
_SECRET = re.compile(r"api[_-]?key|token|secret|password", re.IGNORECASE)


class ConfigError(ValueError):
    """A configuration problem, with the file and field it concerns."""


class _Strict(BaseModel):
    """Unknown fields, non-finite floats and integers beyond 64 bits are refused, also inside
    free-form tables (``kwargs``): they would only fail mid-run, or disable a timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _representable(cls, value: Any) -> Any:
        if problem := _unrepresentable(value):
            raise ValueError(problem)
        return value


def _unrepresentable(value: Any, where: str = "") -> str | None:
    """What makes a value (or a number inside a table or list) impossible to run with."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}must be a finite number, got {value}"
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
        return f"{where}must be an integer that fits in 64 bits, got {value:.3g}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        if problem := _unrepresentable(item, f"{where}{key}: " if isinstance(value, dict) else where):
            return problem
    return None


class ModelSpec(_Strict):
    """One chat model: an ``init_chat_model`` string plus connection options.

    API keys are never stored: name the environment variable that holds one.
    """

    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    # Per-endpoint limits (same base_url and model share them, across roles and clients):
    # docs/concurrency.md "Rate limits".
    max_in_flight: int | None = Field(default=None, gt=0)
    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _no_secrets(self) -> ModelSpec:
        for key in self.kwargs:
            if _SECRET.search(key):
                raise ValueError(
                    f"kwargs.{key}: secrets are never stored in the config (it is saved with the "
                    "checkpoint); put the key in an environment variable and name it in api_key_env"
                )
        if self.base_url and urlsplit(self.base_url).password is not None:
            raise ValueError("base_url: put credentials in an environment variable named by api_key_env, not in the URL")
        return self


class RoleModels(ModelSpec):
    """A model for every role, with optional per-role overrides."""

    task: ModelSpec | None = None
    optimizer: ModelSpec | None = None
    aggregator: ModelSpec | None = None
    judge: ModelSpec | None = None

    def resolve(self, role: str, base: ModelSpec | None = None) -> ModelSpec:
        """The spec for ``role``: ``base``, then these defaults, then the role override."""
        merged: dict[str, Any] = base.model_dump(exclude_defaults=True) if base else {}
        own = ModelSpec(**{k: getattr(self, k) for k in ModelSpec.model_fields})
        merged.update(own.model_dump(exclude_defaults=True))
        override = getattr(self, role)
        if override is not None:
            merged.update(override.model_dump(exclude_defaults=True))
        return ModelSpec(**merged)


class ModelsConfig(RoleModels):
    """Models for the run, plus the retry policy for transient errors.

    A call is retried up to ``max_retries`` times and for at most ``retry_max_wait_s`` seconds
    of waiting between attempts (the defaults ride out an endpoint outage of 30 s and more);
    an endpoint's ``Retry-After`` is honoured up to ``retry_after_cap_s``. ``timeout_s``
    bounds each attempt. ``empty_reply_retries``: how often a call whose reply is empty is sent
    again (once by default: an overloaded server's empty reply is often transient).
    """

    max_retries: int = Field(default=8, ge=0, le=100)
    retry_backoff_s: float = Field(default=1.0, ge=0, le=MAX_SECONDS)
    timeout_s: float | None = Field(default=120.0, gt=0, le=MAX_SECONDS)
    retry_max_wait_s: float = Field(default=60.0, ge=0, le=MAX_SECONDS)
    retry_after_cap_s: float = Field(default=60.0, ge=0, le=MAX_SECONDS)
    empty_reply_retries: int = Field(default=1, ge=0, le=10)


class SplitRanges(_Strict):
    """Half-open ``[start, end)`` example ranges. ``test`` indexes ``test_path`` when set."""

    train: tuple[int, int]
    validation: tuple[int, int]
    test: tuple[int, int]

    @model_validator(mode="after")
    def _ordered(self) -> SplitRanges:
        for name in ("train", "validation", "test"):
            start, end = getattr(self, name)
            if not 0 <= start < end:
                raise ValueError(f"{name} range must satisfy 0 <= start < end, got [{start}, {end}]")
        if _overlap(self.train, self.validation):
            raise ValueError(f"train {list(self.train)} and validation {list(self.validation)} overlap")
        return self


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# The paper's splits. ``gsm8k`` also shuffles ``path`` and ``test_path`` before slicing
# (data/splits.py), as the paper's code does; ``bbh`` and numeric ranges slice in file order.
PAPER_SPLITS = {
    "bbh": SplitRanges(train=(0, 50), validation=(50, 150), test=(150, 250)),
    "gsm8k": SplitRanges(train=(0, 50), validation=(200, 300), test=(300, 400)),
}


class TaskConfig(_Strict):
    """A data set and how to score answers to it. ``format`` and ``path`` may be left out
    when the examples are given in code (:func:`fedtextgrad_graph.federate_app`)."""

    format: Literal["bbh", "gsm8k", "jsonl", "csv"] | None = None
    path: str | None = None
    test_path: str | None = None
    input_field: str = "input"
    target_field: str = "target"
    metric: Literal["last_number", "exact", "judge"] = "last_number"
    split: Literal["bbh", "gsm8k"] | SplitRanges = "bbh"

    @model_validator(mode="after")
    def _test_apart(self) -> TaskConfig:
        ranges = self.split_ranges
        if self.test_path is None and (_overlap(ranges.test, ranges.train) or _overlap(ranges.test, ranges.validation)):
            raise ValueError(f"split: test {list(ranges.test)} overlaps train or validation in the same file")
        return self

    @property
    def split_ranges(self) -> SplitRanges:
        return PAPER_SPLITS[self.split] if isinstance(self.split, str) else self.split


class ClientConfig(_Strict):
    """One client: its id, its task (heterogeneous runs) and model overrides."""

    id: str = Field(min_length=1)
    task: str | None = None
    models: RoleModels | None = None


class FederationConfig(_Strict):
    """The clients, how they share data in-process, and who takes part in a round.

    A round needs updates from at least ``quorum`` (a share) of its selected clients; a client
    that errors, is unreachable or misses ``client_deadline_s`` is dropped for that round.
    """

    partition: Literal["homogeneous", "heterogeneous"] = "homogeneous"
    task: str | None = None
    num_clients: int | None = Field(default=None, gt=0)
    clients: list[ClientConfig] = Field(default_factory=list)
    sampling_rate: float = Field(default=1.0, gt=0, le=1)
    quorum: float = Field(default=0.5, gt=0, le=1)
    client_deadline_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    @field_validator("num_clients")
    @classmethod
    def _not_huge(cls, value: int | None) -> int | None:
        if value is not None and value > MAX_CLIENTS:
            raise ValueError(
                f"{value} clients is more than the {MAX_CLIENTS} supported (each client gets its data "
                "share and site before the first round)"
            )
        return value

    def required_updates(self, selected: int) -> int:
        """How many of ``selected`` clients must upload for a round to aggregate."""
        return max(1, math.ceil(self.quorum * selected - 1e-9))

    def client_ids(self) -> list[str]:
        if self.clients:
            return [c.id for c in self.clients]
        return [f"client-{i + 1}" for i in range(self.num_clients or 0)]

    def client(self, client_id: str) -> ClientConfig:
        for c in self.clients:
            if c.id == client_id:
                return c
        return ClientConfig(id=client_id, task=self.task)


class LocalTrainingConfig(_Strict):
    local_steps: int = Field(default=2, gt=0)
    batch_size: int = Field(default=3, gt=0)
    proximal: Literal["non_decreasing", "strict", "off"] = "non_decreasing"


class PromptConfig(_Strict):
    instruction: str = Field(default=DEFAULT_INSTRUCTION, min_length=1)
    format_instruction: str = DEFAULT_FORMAT_INSTRUCTION


class AggregationConfig(_Strict):
    strategy: str = Field(default="uid", min_length=1)  # a registered strategy: concat, summarize, uid
    tokenizer: Literal["wordpiece", "o200k_base", "cl100k_base"] = "wordpiece"
    # Targets of a uid merge (repaired up to repair_tries times; see aggregation/repair.py).
    min_coverage: float = Field(default=0.9, ge=0, le=1)
    max_length_ratio: float = Field(default=1.5, gt=0)
    repair_tries: int = Field(default=2, ge=0, le=10)
    surprisal: str = Field(default="compression", min_length=1)  # a registered estimator: compression, logprobs
    coverage: Literal["overlap", "entailment"] = "overlap"


class EvaluationConfig(_Strict):
    """Where prompts are scored, which phases run, and ``shard_size``: the server-held examples
    one checkpointed shard scores (a resumed phase re-scores only its unfinished shards)."""

    mode: Literal["server", "federated"] = "server"
    baseline: bool = True
    test: bool = True
    shard_size: int = Field(default=10, gt=0)


class ConvergenceConfig(_Strict):
    max_rounds: int = Field(default=3, gt=0)
    patience: int | None = Field(default=None, gt=0)
    min_delta: float = Field(default=0.0, ge=0)
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    unchanged_rounds: int | None = Field(default=2, ge=0)  # 0 (or None) turns the rule off


class FlowerSettings(_Strict):
    """How the server reaches Flower sites: the SuperLink's address, its TLS settings and the
    file holding the secret that lets this process (and no site) run rounds on it."""

    superlink: str = f"127.0.0.1:{DEFAULT_SUPERLINK_PORT}"
    insecure: bool = False
    root_certificates: str | None = None
    server_secret: str | None = None
    connect_timeout_s: float = Field(default=120.0, gt=0, le=MAX_SECONDS)


class ProcessSettings(_Strict):
    """The ``processes`` transport: ``workers`` processes on this machine share the clients
    (default: one per CPU this process may use)."""

    workers: int | None = Field(default=None, gt=0)


class TransportConfig(_Strict):
    """``kind``: ``local`` (every client in this process), ``processes`` (clients in worker
    processes on this machine) or ``flower`` (sites on their own machines)."""

    kind: str = Field(default="local", min_length=1)
    flower: FlowerSettings = FlowerSettings()
    processes: ProcessSettings = ProcessSettings()


class GuardConfig(_Strict):
    """The upload guard: before a client keeps a new prompt, spans of it that copy the client's
    own examples (``min_words`` or more words in a row) or look like personal data are removed
    (``redact``) or the prompt is refused (``reject``: the step is ``blocked``)."""

    enabled: bool = True
    action: Literal["redact", "reject"] = "redact"
    min_words: int = Field(default=6, ge=2, le=100)
    checks: list[str] = Field(default_factory=lambda: ["verbatim", "personal_data"])


class RunSettings(_Strict):
    name: str = Field(default="fedtextgrad", min_length=1)
    seed: int = 0
    max_concurrency: int = Field(default=256, gt=0)  # docs/concurrency.md "Defaults"
    data_dir: str | None = None


class ScreeningConfig(_Strict):
    """Screens the server applies to each upload before aggregation, in the order listed.

    ``size`` leaves out an upload longer than ``max(size_floor_chars, size_ratio * len(global
    prompt))``. ``validation`` scores each upload and the global prompt on the same sample of
    ``validation_sample`` validation examples and leaves out an upload more than ``margin``
    below the other uploads' median (``rest``), below the global prompt (``global``), either
    (``either``) or both (``both``).
    """

    screens: list[str] = Field(default_factory=lambda: ["size", "validation"])  # registered screens, in order
    size_ratio: float = Field(default=3.0, ge=1)
    size_floor_chars: int = Field(default=4000, gt=0)
    validation_sample: int = Field(default=30, gt=0)
    rule: Literal["rest", "global", "either", "both"] = "either"
    margin: float = Field(default=0.25, ge=0, le=1)


class ReviewConfig(_Strict):
    """``required``: pause the run after each aggregation until a person approves, edits or
    rejects the merged prompt (``fedtextgrad-graph review RUN_ID``)."""

    required: bool = False


class ModelPrice(_Strict):
    """What one model costs: USD per million input (prompt) and output (completion) tokens."""

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)


class BudgetConfig(_Strict):
    """Stop the run at the end of the round whose LLM calls (the baseline's included) brought
    the spend to ``max_usd`` (priced by ``[pricing]``) or ``max_tokens`` (input + output, as
    the providers reported them); resume with a raised budget to go on."""

    max_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)


class FedTextGradConfig(_Strict):
    """The whole run configuration (one TOML file). ``pricing``: by model name (as the round
    records name it, e.g. ``openai:gpt-4o-mini``), what its tokens cost."""

    run: RunSettings = RunSettings()
    prompt: PromptConfig = PromptConfig()
    tasks: dict[str, TaskConfig]
    federation: FederationConfig
    client: LocalTrainingConfig = LocalTrainingConfig()
    aggregation: AggregationConfig = AggregationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    convergence: ConvergenceConfig = ConvergenceConfig()
    models: ModelsConfig = ModelsConfig()
    transport: TransportConfig = TransportConfig()
    guard: GuardConfig = GuardConfig()
    screening: ScreeningConfig = ScreeningConfig()
    review: ReviewConfig = ReviewConfig()
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)
    budget: BudgetConfig = BudgetConfig()

    @model_validator(mode="after")
    def _consistent(self) -> FedTextGradConfig:
        fed = self.federation
        if not self.tasks:
            raise ValueError("tasks: at least one task is required")
        if fed.clients and fed.num_clients is not None and fed.num_clients != len(fed.clients):
            raise ValueError("federation.num_clients disagrees with the number of federation.clients")
        ids = fed.client_ids()
        if not ids:
            raise ValueError("federation: set num_clients or list clients")
        if len(set(ids)) != len(ids):
            raise ValueError("federation.clients: client ids must be unique")
        if fed.partition == "homogeneous":
            if fed.task is None:
                if len(self.tasks) != 1:
                    raise ValueError("federation.task: name the task to split among clients")
            elif fed.task not in self.tasks:
                raise ValueError(f"federation.task: unknown task {fed.task!r}; known: {sorted(self.tasks)}")
        else:
            if not fed.clients:
                raise ValueError("federation.clients: a heterogeneous run lists its clients with their tasks")
            for i, c in enumerate(fed.clients):
                if c.task not in self.tasks:
                    raise ValueError(
                        f"federation.clients[{i}].task: unknown task {c.task!r}; known: {sorted(self.tasks)}"
                    )
        for name, task in self.tasks.items():
            if task.split == "gsm8k" and task.test_path is None:
                raise ValueError(f"tasks.{name}.test_path: the gsm8k split takes its test set from test_path")
        return self

    def client_task(self, client_id: str) -> str:
        """The name of the task a client trains on."""
        fed = self.federation
        if fed.partition == "heterogeneous":
            return fed.client(client_id).task  # type: ignore[return-value]
        return fed.task or next(iter(self.tasks))

    def model_spec(self, role: str, client_id: str | None = None) -> ModelSpec:
        """The resolved model spec of ``role``, for one client or the server."""
        spec = self.models.resolve(role)
        overrides = self.federation.client(client_id).models if client_id else None
        return overrides.resolve(role, base=spec) if overrides else spec

    def with_model_override(
        self, model: str | None = None, base_url: str | None = None
    ) -> FedTextGradConfig:
        """A copy where ``model``/``base_url`` replace every role's and client's setting
        (see :func:`override_models`)."""
        if model is None and base_url is None:
            return self
        clients = [
            c.model_copy(update={"models": override_models(c.models, model, base_url)}) if c.models else c
            for c in self.federation.clients
        ]
        return self.model_copy(
            update={
                "models": override_models(self.models, model, base_url),
                "federation": self.federation.model_copy(update={"clients": clients}),
            }
        )

    def with_flower(self, settings: FlowerSettings) -> FedTextGradConfig:
        """A copy whose clients are Flower sites reached through ``settings``."""
        return self.model_copy(update={"transport": TransportConfig(kind="flower", flower=settings)})

    def with_budget(self, *, max_usd: float | None = None, max_tokens: int | None = None) -> FedTextGradConfig:
        """A copy whose budget limits are replaced where given.

        Raises:
            ConfigError: A limit that is not positive.
        """
        given = {k: v for k, v in {"max_usd": max_usd, "max_tokens": max_tokens}.items() if v is not None}
        if not given:
            return self
        try:
            budget = BudgetConfig(**(self.budget.model_dump() | given))
        except ValidationError as exc:
            raise ConfigError(f"budget: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
        return self.model_copy(update={"budget": budget})

    def with_data_dir(self, data_dir: str | Path) -> FedTextGradConfig:
        run = self.run.model_copy(update={"data_dir": str(Path(data_dir).resolve())})
        return self.model_copy(update={"run": run})


M = TypeVar("M", bound=RoleModels)


def override_models(models: M, model: str | None, base_url: str | None) -> M:
    """A copy of ``models`` where ``model``/``base_url`` replace every role's setting.

    A new ``model`` also drops the ``kwargs`` and ``temperature`` set for the old ones,
    which may not apply to it (a simulated latency, another provider's options).
    """
    patch: dict[str, Any] = {"base_url": base_url} if base_url is not None else {}
    if model is not None:
        patch.update(model=model, kwargs={}, temperature=None)
    data = models.model_dump()
    data.update(patch)
    for role in ROLES:
        if data.get(role):
            data[role].update(patch)
    try:
        return type(models)(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error("--model/--base-url", exc)) from None


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: the file, the field's dotted path, and what is wrong."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "int_parsing_size":
            msg = f"must be an integer that fits in 64 bits, got {err['input']!r}"
        where = f"{loc}: " if loc else ""
        lines.append(f"{source}: {where}{msg}")
    return "\n".join(lines)


def read_toml(path: Path, what: str = "config file") -> dict[str, Any]:
    """A TOML file's content; :class:`ConfigError` names the file and the problem."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def parse_config(data: dict[str, Any], *, source: str = "config") -> FedTextGradConfig:
    """Validate a config mapping; raise :class:`ConfigError` naming the bad field."""
    try:
        return FedTextGradConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None


def load_config(path: str | Path, *, data_dir: str | Path | None = None) -> FedTextGradConfig:
    """Load a TOML config. Data paths resolve against ``data_dir``, then ``run.data_dir``
    (relative to the config file), then the config file's folder."""
    path = Path(path)
    config = parse_config(read_toml(path), source=str(path))
    if data_dir is None:
        data_dir = path.parent / (config.run.data_dir or ".")
    return config.with_data_dir(data_dir)
