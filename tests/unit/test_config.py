"""load_config: TOML parsing, field-naming errors, model overrides and data_dir resolution."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fedtextgrad_graph.config import ConfigError, ModelSpec, load_config

BASE = """
[tasks.counting]
format = "bbh"
path = "counting.json"

[tasks.arithmetic]
format = "bbh"
path = "arithmetic.json"

[federation]
task = "counting"
num_clients = 3
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE))
    assert config.federation.client_ids() == ["client-1", "client-2", "client-3"]
    assert config.client.local_steps == 2
    assert config.client_task("client-2") == "counting"


# --- errors that name the field ------------------------------------------------------------


def test_unknown_field_is_named(tmp_path: Path) -> None:
    message = load_error(tmp_path, BASE + "\n[client]\nlocal_stepz = 2\n")
    assert "client.local_stepz" in message
    assert "unknown field" in message
    assert str(tmp_path / "run.toml") in message


@pytest.mark.parametrize("rate", ["0", "1.5"])
def test_sampling_rate_out_of_range(tmp_path: Path, rate: str) -> None:
    text = BASE.replace("num_clients = 3", f"num_clients = 3\nsampling_rate = {rate}")
    assert "federation.sampling_rate" in load_error(tmp_path, text)


@pytest.mark.parametrize("steps", ["0", "-1"])
def test_local_steps_must_be_positive(tmp_path: Path, steps: str) -> None:
    assert "client.local_steps" in load_error(tmp_path, BASE + f"\n[client]\nlocal_steps = {steps}\n")


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    assert "client.batch_size" in load_error(tmp_path, BASE + "\n[client]\nbatch_size = 0\n")


def test_unknown_federation_task(tmp_path: Path) -> None:
    message = load_error(tmp_path, BASE.replace('task = "counting"', 'task = "countin"'))
    assert "federation.task" in message
    assert "'countin'" in message


def test_heterogeneous_client_with_unknown_task(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        [tasks.counting]
        format = "bbh"
        path = "counting.json"

        [federation]
        partition = "heterogeneous"
        clients = [{ id = "a", task = "counting" }, { id = "b", task = "nope" }]
        """,
    )
    assert "federation.clients[1].task" in message
    assert "'nope'" in message


def test_duplicate_client_ids(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        """
        [tasks.counting]
        format = "bbh"
        path = "counting.json"

        [federation]
        clients = [{ id = "a" }, { id = "b" }, { id = "a" }]
        """,
    )
    assert "federation.clients" in message
    assert "unique" in message


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[federation\nnum_clients = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


# --- models ----------------------------------------------------------------------------------

MODELS = """
[models]
model = "openai:default"
temperature = 0.5

[models.optimizer]
model = "openai:optimizer"

[models.judge]
temperature = 0.0

[federation]
partition = "heterogeneous"
clients = [
  { id = "plain", task = "counting" },
  { id = "custom", task = "counting", models = { model = "openai:client", base_url = "http://client:1/v1", optimizer = { model = "openai:client-opt", temperature = 0.9 } } },
]

[tasks.counting]
format = "bbh"
path = "counting.json"
"""


def test_model_spec_resolution_order(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MODELS))

    # default
    assert config.model_spec("task") == ModelSpec(model="openai:default", temperature=0.5)
    # default -> role
    assert config.model_spec("optimizer") == ModelSpec(model="openai:optimizer", temperature=0.5)
    assert config.model_spec("judge") == ModelSpec(model="openai:default", temperature=0.0)
    # a client without overrides is the server
    assert config.model_spec("optimizer", "plain") == config.model_spec("optimizer")
    # default -> role -> client: the client's defaults beat the server's role override
    assert config.model_spec("optimizer", "custom").base_url == "http://client:1/v1"
    assert config.model_spec("judge", "custom") == ModelSpec(
        model="openai:client", base_url="http://client:1/v1", temperature=0.0
    )
    # ... -> client role
    assert config.model_spec("optimizer", "custom") == ModelSpec(
        model="openai:client-opt", base_url="http://client:1/v1", temperature=0.9
    )


def test_with_model_override_replaces_every_model(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MODELS))
    patched = config.with_model_override(model="simulated")

    for client_id in (None, "plain", "custom"):
        for role in ("task", "optimizer", "aggregator", "judge"):
            assert patched.model_spec(role, client_id).model == "simulated", (role, client_id)
    # Options of the old models (temperature, kwargs) go with them; endpoints stay.
    assert patched.model_spec("optimizer", "custom").temperature is None
    assert patched.model_spec("optimizer", "custom").base_url == "http://client:1/v1"
    # the original config is untouched
    assert config.model_spec("optimizer", "custom").model == "openai:client-opt"


def test_secrets_in_model_settings_are_refused(tmp_path: Path) -> None:
    text = BASE + '\n[models]\nmodel = "openai:x"\nkwargs = { api_key = "sk-123" }\n'
    message = load_error(tmp_path, text)
    assert "models.kwargs.api_key" in message.replace("models: kwargs", "models.kwargs") and "api_key_env" in message
    text = BASE + '\n[models]\nbase_url = "http://user:pw@host/v1"\n'
    assert "base_url" in load_error(tmp_path, text)


def test_config_path_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_with_model_override_base_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MODELS)).with_model_override(base_url="http://local:8000/v1")
    assert config.model_spec("task").base_url == "http://local:8000/v1"
    assert config.model_spec("optimizer", "custom").base_url == "http://local:8000/v1"
    assert config.model_spec("optimizer", "custom").model == "openai:client-opt"


def test_with_model_override_without_arguments_is_identity(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MODELS))
    assert config.with_model_override() is config


# --- data_dir --------------------------------------------------------------------------------


def test_data_dir_defaults_to_config_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config = load_config(write(tmp_path / "conf", BASE))
    assert Path(config.run.data_dir) == (tmp_path / "conf").resolve()


def test_run_data_dir_is_relative_to_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(write(tmp_path / "conf", '[run]\ndata_dir = "../data"\n' + BASE))
    assert Path(config.run.data_dir) == (tmp_path / "data").resolve()


def test_data_dir_argument_overrides_config(tmp_path: Path) -> None:
    override = tmp_path / "override"
    path = write(tmp_path, '[run]\ndata_dir = "data"\n' + BASE)
    config = load_config(path, data_dir=override)
    assert Path(config.run.data_dir) == override.resolve()


@pytest.mark.parametrize(
    ("split", "words"),
    [
        ("{ train = [0, 11], validation = [10, 20], test = [20, 30] }", "train [0, 11] and validation [10, 20] overlap"),
        ("{ train = [0, 10], validation = [10, 20], test = [15, 30] }", "test [15, 30] overlaps"),
    ],
)
def test_overlapping_splits_are_refused(tmp_path: Path, split: str, words: str) -> None:
    text = BASE.replace('path = "counting.json"', f'path = "counting.json"\nsplit = {split}')
    message = load_error(tmp_path, text)
    assert "tasks.counting" in message and words in message


def test_test_split_may_reuse_indices_of_a_separate_test_file(tmp_path: Path) -> None:
    text = BASE.replace(
        'path = "counting.json"',
        'path = "counting.json"\ntest_path = "counting_test.json"\nsplit = { train = [0, 10], validation = [10, 20], test = [0, 10] }',
    )
    assert load_config(write(tmp_path, text)).tasks["counting"].split_ranges.test == (0, 10)


# --- impossible numbers ----------------------------------------------------------------------

IMPOSSIBLE = {
    "max_rounds = 1e20": ("[convergence]", "convergence.max_rounds: must be an integer that fits in 64 bits"),
    "seed = 1e29": ("[run]", "run.seed: must be an integer that fits in 64 bits"),
    "seed = 99999999999999999999999": ("[run]", "run.seed: must be an integer that fits in 64 bits"),
    "temperature = nan": ("[models]", "models.temperature: Input should be a finite number"),
    "timeout_s = inf": ("[models]", "models.timeout_s: Input should be a finite number"),
    "timeout_s = 1e12": ("[models]", "models.timeout_s: Input should be less than or equal to 604800"),
    "retry_max_wait_s = -inf": ("[models]", "models.retry_max_wait_s: Input should be a finite number"),
    "kwargs = { latency_s = nan }": ("[models]", "models.kwargs: latency_s: must be a finite number, got nan"),
    "kwargs = { stop = [1, 1e400] }": ("[models]", "models.kwargs: stop: must be a finite number, got inf"),
    "optimizer = { temperature = -inf }": ("[models]", "models.optimizer.temperature: Input should be a finite number"),
    "min_delta = nan": ("[convergence]", "convergence.min_delta: Input should be a finite number"),
    "client_deadline_s = inf": ("", "federation.client_deadline_s: Input should be a finite number"),
    "connect_timeout_s = inf": ("[transport.flower]", "transport.flower.connect_timeout_s: Input should be a finite number"),
}


@pytest.mark.parametrize("line", sorted(IMPOSSIBLE))
def test_impossible_numbers_are_refused_naming_the_field(tmp_path: Path, line: str) -> None:
    section, expected = IMPOSSIBLE[line]
    text = BASE + f"\n{section}\n{line}\n" if section else BASE.replace("num_clients = 3", f"num_clients = 3\n{line}")
    message = load_error(tmp_path, text)
    assert expected in message and message.startswith(str(tmp_path / "run.toml"))


def test_nested_client_models_and_split_ranges_are_checked_too(tmp_path: Path) -> None:
    clients = BASE.replace("num_clients = 3", 'clients = [{ id = "a", models = { temperature = nan } }]')
    assert "federation.clients.0.models.temperature: Input should be a finite number" in load_error(tmp_path, clients)
    split = BASE.replace('path = "counting.json"', 'path = "counting.json"\nsplit = { train = [0, 1e30], validation = [50, 60], test = [60, 70] }', 1)
    assert "tasks.counting.split" in load_error(tmp_path, split)


@pytest.mark.parametrize("clients", ["1e6", "1000000", "10001"])
def test_a_huge_federation_is_refused_at_load(tmp_path: Path, clients: str) -> None:
    message = load_error(tmp_path, BASE.replace("num_clients = 3", f"num_clients = {clients}"))
    assert "federation.num_clients:" in message and "more than the 10000 supported" in message
    assert len(message.splitlines()) == 1


def test_large_finite_numbers_within_range_still_load(tmp_path: Path) -> None:
    text = BASE + "\n[run]\nseed = 9223372036854775807\n\n[models]\ntemperature = 1e-9\nkwargs = { top_p = 0.9, n = 1 }\n"
    config = load_config(write(tmp_path, text.replace("num_clients = 3", "num_clients = 10000")))
    assert config.run.seed == 2**63 - 1 and config.federation.num_clients == 10000


def test_site_files_refuse_impossible_numbers(tmp_path: Path) -> None:
    from fedtextgrad_graph.site.config import load_site_config

    site = write(tmp_path, '[site]\nclient_id = "a"\nmax_concurrency = 1e30\n[task]\nformat = "bbh"\npath = "d.json"\n[models]\ntimeout_s = inf\n', "site.toml")
    with pytest.raises(ConfigError) as info:
        load_site_config(site)
    message = str(info.value)
    assert "site.toml: site.max_concurrency: must be an integer that fits in 64 bits" in message
    assert "site.toml: models.timeout_s: Input should be a finite number" in message
