"""A site's own configuration (SITE.toml): its client id, its task data and its models.

    [site]
    client_id = "hospital-a"
    max_concurrency = 256         # in-flight LLM calls at this site

    [task]                        # the fields of a run config's [tasks.NAME]
    format = "jsonl"
    path = "data.jsonl"           # relative to this file
    split = { train = [0, 12], validation = [12, 18], test = [18, 24] }

    [models]                      # the fields of a run config's [models]
    model = "openai:gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"   # keys only by environment variable name

    [guard]                       # the upload guard over this site's data (on by default)
    action = "redact"             # or "reject"

The file never leaves the site: the server sees the client id, prompts and counts only.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from ..config import (
    ConfigError,
    GuardConfig,
    ModelsConfig,
    TaskConfig,
    _Strict,
    format_validation_error,
    override_models,
    read_toml,
)

__all__ = ["SiteConfig", "SiteSettings", "load_site_config"]


class SiteSettings(_Strict):
    """Who this site is and how it runs.

    ``task`` (optional) names the task this site's data is for; a server asking it to train
    on another task is refused. ``state_dir`` (relative to the site file) keeps, in a folder
    per client id, the site's last result per run, so a resumed server gets finished work
    back without new LLM calls.
    """

    client_id: str = Field(min_length=1)
    task: str | None = None
    max_concurrency: int = Field(default=256, gt=0)
    state_dir: str = ".fedtextgrad-site"

    @field_validator("client_id")
    @classmethod
    def _usable_as_folder_name(cls, value: str) -> str:
        if value in (".", "..") or any(c in value for c in "/\\\0"):
            raise ValueError("a client id names a folder of the site's state: no '/', '\\', '.' or '..'")
        return value


class SiteConfig(_Strict):
    """The whole SITE.toml. ``data_dir`` is where its data paths resolve (the file's folder).
    ``guard`` is this site's upload guard: the site owns the data, so its own setting applies,
    whatever the server's config says."""

    site: SiteSettings
    task: TaskConfig
    models: ModelsConfig = ModelsConfig()
    data_dir: str = "."
    guard: GuardConfig = GuardConfig()

    @property
    def state_path(self) -> Path:
        """This client's folder in ``state_dir`` (two site files beside each other keep apart)."""
        return Path(self.data_dir) / self.site.state_dir / self.site.client_id

    def with_model_override(self, model: str | None = None, base_url: str | None = None) -> SiteConfig:
        """A copy where ``model``/``base_url`` replace every role's setting."""
        if model is None and base_url is None:
            return self
        return self.model_copy(update={"models": override_models(self.models, model, base_url)})


def load_site_config(path: str | Path) -> SiteConfig:
    """Load a SITE.toml; data paths resolve against its folder. :class:`ConfigError` names the
    file and the field."""
    path = Path(path)
    raw = read_toml(path, "site file")
    if "data_dir" in raw:
        raise ConfigError(f"{path}: data_dir: unknown field (paths are relative to the site file)")
    try:
        return SiteConfig.model_validate({**raw, "data_dir": str(path.resolve().parent)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(str(path), exc)) from None
