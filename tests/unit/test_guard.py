"""The upload guard's checks and actions, on their own (no model, no graph)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedtextgrad_graph.config import DEFAULT_FORMAT_INSTRUCTION, DEFAULT_INSTRUCTION, ConfigError, GuardConfig, parse_config
from fedtextgrad_graph.data import ClientData, Example
from fedtextgrad_graph.models.simulated import TIPS
from fedtextgrad_graph.site.config import load_site_config
from fedtextgrad_graph.site.guard import (
    Finding,
    PersonalDataCheck,
    UploadCheck,
    UploadGuard,
    VerbatimCheck,
    check_names,
    create_upload_guard,
    register_check,
)

from ..conftest import counting_examples

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "data"
SNAKES = Example(input="I have a cat and two snakes. How many animals do I have?", target="3")


def _data(*examples: Example) -> ClientData:
    return ClientData("task", list(examples), [])


def _guard(*examples: Example, **settings: object) -> UploadGuard:
    guard = create_upload_guard(GuardConfig(**settings), _data(*examples))
    assert guard is not None
    return guard


def _caught(prompt: str, finding: Finding) -> str:
    return prompt[finding.start : finding.end]


# --- verbatim ---------------------------------------------------------------------------------


def test_verbatim_span_is_found_across_case_punctuation_and_spacing():
    check = VerbatimCheck([SNAKES.input], min_words=6)
    prompt = 'Count carefully. For example: "i HAVE a cat,  and two\nSNAKES!" Then answer.'
    [finding] = check.find(prompt)
    assert finding.kind == "verbatim"
    assert _caught(prompt, finding) == "i HAVE a cat,  and two\nSNAKES"


def test_verbatim_needs_min_words_in_a_row():
    five = "Remember: a cat and two snakes."  # five words of the example in a row
    assert VerbatimCheck([SNAKES.input], min_words=6).find(five) == []
    assert [f.kind for f in VerbatimCheck([SNAKES.input], min_words=5).find(five)] == ["verbatim"]


def test_overlapping_windows_make_one_span():
    check = VerbatimCheck([SNAKES.input], min_words=6)
    prompt = "Note I have a cat and two snakes. How many animals do I have? Then stop."
    [finding] = check.find(prompt)
    assert _caught(prompt, finding) == "I have a cat and two snakes. How many animals do I have"


def test_targets_and_validation_examples_are_protected_too():
    record = Example(input="Summarize the visit.", target="Patient Ada Lovelace reported chest pain after the second dose")
    held_out = Example(input="Which ward treats the rare Gorham Stout syndrome in children?", target="B")
    guard = create_upload_guard(GuardConfig(), ClientData("task", [record], [held_out]))
    assert guard is not None
    verdict = guard.inspect("Be brief. Example: patient Ada Lovelace reported chest pain after the dose.")
    assert verdict.caught == {"verbatim": 1}
    verdict = guard.inspect("Think of the rare Gorham Stout syndrome in children first.")
    assert verdict.caught == {"verbatim": 1}


def test_text_the_server_sent_is_not_caught():
    check = VerbatimCheck([SNAKES.input], min_words=6)
    sent = "You will answer: how many animals do I have? Think."
    assert check.find("Question type: How many animals do I have?", allowed=sent) == []
    assert len(check.find("Question type: How many animals do I have?")) == 1


def test_the_ngram_set_keeps_no_example_text():
    check = VerbatimCheck([SNAKES.input], min_words=6)
    assert all(isinstance(key, int) for key in check._ngrams)


# --- personal data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("jane.doe+fed@mail.example.org", "email"),
        ("+1 415 555 0100", "phone"),
        ("+44 20 7946 0958", "phone"),
        ("(415) 555-0100", "phone"),
        ("415-555-0100", "phone"),
        ("415.555.0100", "phone"),
        ("4155550100", "digit_run"),
        ("4111 1111 1111 1111", "digit_run"),
        ("123-45-6789", "digit_run"),
    ],
)
def test_personal_data_is_found(text, kind):
    prompt = f"Reach the owner at {text} if unsure."
    [finding] = PersonalDataCheck().find(prompt)
    assert (finding.kind, _caught(prompt, finding)) == (kind, text)


@pytest.mark.parametrize(
    "prompt",
    [
        "Round to 2 decimal places and answer between 1 and 100.",
        "Events after the year 2024 or before 1999 do not count.",
        "Write large numbers with commas: 1,000,000,000 or 12,345,678.",
        "Use pi = 3.14159265358979 when needed.",
        "An answer like 12345678 is fine.",
        "Dates look like 2024-01-15; times like 12:30.",
        "Evaluate ((-9 * -5) - (6 + -2)) = 41 step by step.",
        "Steps: 1. read 2. list 3. add 4. check 5. answer.",
        "Mention it @ the end, e.g. 5 items @ 3 each.",
    ],
)
def test_ordinary_numbers_are_not_personal_data(prompt):
    assert PersonalDataCheck().find(prompt) == []


# --- the guard and its actions ----------------------------------------------------------------


def test_redact_removes_the_spans_and_tidies_the_prompt():
    guard = _guard(SNAKES)
    prompt = f'Count each kind. For example: "I have a cat and two snakes." Mail jane@x.org for help. {DEFAULT_FORMAT_INSTRUCTION}'
    verdict = guard.inspect(prompt)
    assert verdict.caught == {"verbatim": 1, "email": 1}
    assert verdict.redacted and not verdict.blocked
    assert verdict.prompt == f"Count each kind. For example: Mail for help. {DEFAULT_FORMAT_INSTRUCTION}"


def test_redaction_leaves_no_empty_quotes_behind():
    verdict = _guard(SNAKES).inspect('Count. For example: "I have a cat and two snakes. How many animals do I have?" Then add.')
    assert verdict.prompt == "Count. For example: Then add."


def test_redaction_tidies_only_where_it_cut():
    guard = _guard(SNAKES)
    untouched = "Answer with '...' or ( ) if unsure!!"
    assert guard.inspect(f"I have a cat and two snakes. {untouched}").prompt == untouched
    prompt = "Count each kind.\n\nExample: I have a cat and two snakes.\nAnswer: 3\n\nThen add."
    assert guard.inspect(prompt).prompt == "Count each kind.\n\nExample:\nAnswer: 3\n\nThen add."


def test_reject_blocks_any_finding_and_keeps_clean_prompts():
    guard = _guard(SNAKES, action="reject")
    verdict = guard.inspect("Like: I have a cat and two snakes. Count.")
    assert verdict.blocked and verdict.prompt is None and verdict.caught == {"verbatim": 1}
    clean = guard.inspect("Count each kind of animal, then add.")
    assert (clean.prompt, clean.caught, clean.blocked, clean.redacted) == ("Count each kind of animal, then add.", {}, False, False)


def test_redaction_that_leaves_nothing_blocks():
    verdict = _guard(SNAKES).inspect('"I have a cat and two snakes." (jane@x.org)')
    assert verdict.blocked
    assert verdict.caught == {"verbatim": 1, "email": 1}


def test_checks_are_chosen_by_name():
    only_personal = _guard(SNAKES, checks=["personal_data"])
    assert only_personal.inspect("I have a cat and two snakes.").caught == {}
    assert create_upload_guard(GuardConfig(enabled=False), _data(SNAKES)) is None
    with pytest.raises(ConfigError, match=r"guard\.checks: unknown check 'nosuch'; choose from"):
        create_upload_guard(GuardConfig(checks=["verbatim", "nosuch"]), _data(SNAKES))


def test_a_registered_check_is_used_by_name():
    @register_check
    class CodeName(UploadCheck):
        name = "test_code_name"

        @classmethod
        def create(cls, config: GuardConfig, examples: list[Example]) -> UploadCheck:
            return cls()

        def find(self, prompt: str, *, allowed: str = "") -> list[Finding]:
            i = prompt.find("Bluebird")
            return [] if i < 0 else [Finding(self.name, i, i + len("Bluebird"))]

    assert "test_code_name" in check_names()
    verdict = _guard(SNAKES, checks=["test_code_name"]).inspect("Project Bluebird: count animals.")
    assert (verdict.prompt, verdict.caught) == ("Project: count animals.", {"test_code_name": 1})


# --- no false positives on ordinary prompts ---------------------------------------------------


def _example_files() -> list[Example]:
    examples = []
    for name in ("object_counting.json", "multistep_arithmetic.json"):
        examples += [Example(e["input"], e["target"]) for e in json.loads((EXAMPLES_DIR / name).read_text())["examples"]]
    for line in (EXAMPLES_DIR / "word_problems.jsonl").read_text().splitlines():
        row = json.loads(line)
        examples.append(Example(row["question"], row["answer"]))
    return examples + [Example(e["input"], e["target"]) for e in counting_examples(50)]


def test_default_prompts_and_simulated_tips_pass_the_default_guard():
    guard = _guard(*_example_files())
    prompts = [DEFAULT_INSTRUCTION, DEFAULT_FORMAT_INSTRUCTION, " ".join([DEFAULT_INSTRUCTION, *TIPS, DEFAULT_FORMAT_INSTRUCTION])]
    for prompt in prompts:
        assert guard.inspect(prompt).caught == {}, prompt


# --- configuration ----------------------------------------------------------------------------


def test_guard_config_defaults_and_errors():
    config = parse_config({"tasks": {"t": {}}, "federation": {"num_clients": 1}})
    assert config.guard == GuardConfig(enabled=True, action="redact", min_words=6, checks=["verbatim", "personal_data"])
    with pytest.raises(ConfigError, match=r"^run\.toml: guard\.action: Input should be 'redact' or 'reject'"):
        parse_config({"tasks": {"t": {}}, "federation": {"num_clients": 1}, "guard": {"action": "drop"}}, source="run.toml")
    with pytest.raises(ConfigError, match=r"guard\.min_words: Input should be greater than or equal to 2"):
        parse_config({"tasks": {"t": {}}, "federation": {"num_clients": 1}, "guard": {"min_words": 1}})


def test_a_site_file_has_its_own_guard_section(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(
        '[site]\nclient_id = "a"\n[task]\nformat = "jsonl"\npath = "d.jsonl"\n'
        'split = { train = [0, 2], validation = [2, 3], test = [3, 4] }\n'
        '[guard]\naction = "reject"\nmin_words = 8\n'
    )
    assert load_site_config(site).guard == GuardConfig(action="reject", min_words=8)
    site.write_text(site.read_text().replace("min_words = 8", "mode = 1"))
    with pytest.raises(ConfigError, match=r"site\.toml: guard\.mode: unknown field"):
        load_site_config(site)


# --- the wire ---------------------------------------------------------------------------------


def _update(**changes: object) -> dict:
    step = {
        "client_id": "a", "round": 1, "step": 1, "batch_size": 3, "train_accuracy": 0.5, "updated_accuracy": None,
        "outcome": "blocked", "prompt_chars": 10, "llm_calls": 5, "guard_caught": {"verbatim": 1}, "redacted": False,
    }  # fmt: skip
    update = {
        "client_id": "a", "round": 1, "task": "t", "prompt": "p", "steps": [step], "accepted": 0, "rejected": 0,
        "malformed": 0, "llm_calls": 5, "models": {}, "blocked": 1, "redacted": 0,
    }  # fmt: skip
    return {**update, **changes}


def test_flower_replies_carry_the_guard_counts_and_are_checked():
    from fedtextgrad_graph.transport.flower.messages import typed
    from fedtextgrad_graph.wire import ClientUpdate

    assert typed(_update(), ClientUpdate)["steps"][0]["outcome"] == "blocked"
    missing = _update()
    del missing["blocked"]
    with pytest.raises(ValueError, match="malformed ClientUpdate: blocked: Field required"):
        typed(missing, ClientUpdate)
    bad_step = _update(steps=[{**_update()["steps"][0], "guard_caught": {"verbatim": "one"}}])
    with pytest.raises(ValueError, match=r"malformed ClientUpdate: steps\.0\.guard_caught\.verbatim"):
        typed(bad_step, ClientUpdate)


def test_a_site_reuses_no_update_made_under_other_guard_settings(tmp_path):
    from fedtextgrad_graph.site.cache import ResultCache
    from fedtextgrad_graph.wire import TrainRequest

    request = TrainRequest(
        run_id="r", client_id="a", round=1, global_prompt="p", task="t", seed=0,
        local_steps=1, batch_size=3, proximal="off", format_instruction="",
    )  # fmt: skip
    off = GuardConfig(enabled=False).model_dump_json()
    ResultCache(tmp_path, settings=off).put(request, _update())  # type: ignore[arg-type]
    assert ResultCache(tmp_path, settings=off).get(request) == _update()
    assert ResultCache(tmp_path, settings=GuardConfig().model_dump_json()).get(request) is None
