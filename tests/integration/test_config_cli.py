"""Impossible numbers in a run config: one line naming the file and field, exit 2, nothing run."""

from __future__ import annotations

import pytest

from .cli import cli

CASES = {
    "huge-federation": ("num_clients = 3", "num_clients = 1e6", "federation.num_clients: 1000000 clients is more than"),
    "nan-temperature": ("[models]", "[models]\ntemperature = nan", "models.temperature: Input should be a finite number"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_impossible_numbers_get_one_line_and_exit_2(make_config, tmp_path, case):
    old, new, expected = CASES[case]
    config = make_config(models='[models]\nmodel = "simulated"')
    config.write_text(config.read_text().replace(old, new, 1))
    done = cli("run", config, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: {expected}")
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()
