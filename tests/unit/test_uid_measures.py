"""The measures of a merge: units, near-duplicates, coverage, surprisal estimators, UID score,
length ratio; and the repair logic: targets, best candidate, repair prompt, fallback."""

from __future__ import annotations

import math

import pytest

from fedtextgrad_graph.aggregation import create_aggregator, surprisal
from fedtextgrad_graph.aggregation.repair import (
    MergeTargets,
    best_candidate,
    finish_merge,
    needs_repair,
    repair_once,
    repair_request,
    start_merge,
    targets_of,
)
from fedtextgrad_graph.aggregation.surprisal import (
    CompressionSurprisal,
    LogprobsSurprisal,
    SurprisalEstimator,
    SurprisalUnavailable,
    create_estimator,
    estimator_names,
    parse_completion_logprobs,
    register_estimator,
)
from fedtextgrad_graph.aggregation.uid import (
    MergeMeter,
    Unit,
    length_ratio,
    overlap_covered,
    split_units,
    uid_score,
    unique_units,
)
from fedtextgrad_graph.text import compose_prompt

FORMAT = "The last line of your response should be of the following format: 'Answer: $VALUE'."


class Replies:
    """An async ``generate`` that returns its replies in turn and records every request."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[str, str]] = []

    async def __call__(self, system: str, user: str) -> str:
        self.requests.append((system, user))
        return self.replies[min(len(self.requests), len(self.replies)) - 1]


def test_units_are_sentences_lines_and_bullets():
    body = "Count every object, e.g. each fruit. Check the total twice!\n- List items first\n2) Ignore vegetables. Mr. Smith's rule: add 3.5 and 2. Done"
    assert split_units(body) == [
        "Count every object, e.g. each fruit.",
        "Check the total twice!",
        "List items first",
        "Ignore vegetables.",
        "Mr. Smith's rule: add 3.5 and 2.",
        "Done",
    ]


def test_near_duplicates_merge_and_remember_their_clients():
    units = unique_units(
        {
            "a": "Count every object carefully. Check the total.",
            "b": "Count each object carefully. Restate the question.",
            "c": "count every object carefully",
        }
    )
    assert units == [
        Unit("Count every object carefully.", ("a", "b", "c")),
        Unit("Check the total.", ("a",)),
        Unit("Restate the question.", ("b",)),
    ]


def test_overlap_coverage_needs_most_content_words_in_one_or_two_sentences():
    unit = Unit("List every relevant item explicitly before counting.", ("a",))
    assert overlap_covered(unit, ["Before counting, list each relevant item explicitly."])
    assert overlap_covered(unit, ["First list every item.", "Be explicit about relevant ones before counting."])
    assert not overlap_covered(unit, ["List the items.", "Think hard.", "Be explicit before counting."])
    assert not overlap_covered(unit, ["Count the fruit."])


def test_uid_score_is_the_coefficient_of_variation():
    assert uid_score([2.0, 2.0, 2.0]) == 0.0
    assert uid_score([1.0, 3.0]) == pytest.approx(0.5)
    assert uid_score([4.0]) == 0.0


def test_length_ratio_is_against_the_longest_client_body():
    assert length_ratio("x" * 30, ["x" * 10, "x" * 20]) == 1.5


async def test_compression_surprisal_is_low_for_repetition_and_high_for_new_text():
    estimator = CompressionSurprisal()
    values = await estimator.surprisal(
        [
            "Count every fruit in the list carefully before answering.",
            "Count every fruit in the list carefully before answering.",
            "Zebras juggle quartz vials while xylophones hum.",
        ]
    )
    assert values[1] < values[0] and values[1] < values[2]
    assert values == await estimator.surprisal(
        [
            "Count every fruit in the list carefully before answering.",
            "Count every fruit in the list carefully before answering.",
            "Zebras juggle quartz vials while xylophones hum.",
        ]
    )  # deterministic


async def test_logprobs_surprisal_sums_token_logprobs_per_sentence_in_bits_per_word():
    async def logprobs(text: str) -> list[tuple[int, float]]:
        assert text == "Count apples. Check twice now."
        return [(0, -0.0), (6, -math.log(2) * 4), (14, -math.log(2) * 3), (20, -math.log(2) * 3)]

    values = await LogprobsSurprisal(logprobs).surprisal(["Count apples.", "Check twice now."])
    assert values == pytest.approx([4 / 2, 6 / 3])


def test_completion_logprobs_parse_and_fail_in_one_line():
    body = {"choices": [{"logprobs": {"tokens": ["A", " b"], "token_logprobs": [None, -1.5], "text_offset": [0, 1]}}]}
    assert parse_completion_logprobs(body) == [(1, -1.5)]
    with pytest.raises(SurprisalUnavailable, match="no prompt logprobs"):
        parse_completion_logprobs({"choices": [{"text": "", "logprobs": None}]})


async def test_estimators_are_a_registry_and_an_unavailable_one_falls_back_to_compression(caplog, monkeypatch):
    monkeypatch.setattr(surprisal, "_REGISTRY", dict(surprisal._REGISTRY))  # the test's estimator stays here
    assert {"compression", "logprobs"} <= set(estimator_names())
    with pytest.raises(ValueError, match="unknown surprisal estimator 'gpt'; choose one of"):
        create_estimator("gpt")

    @register_estimator
    class Flat(SurprisalEstimator):
        name = "flat-test"

        async def surprisal(self, sentences):
            return [1.0 for _ in sentences]

    assert isinstance(create_estimator("flat-test"), Flat)
    meter = MergeMeter(create_estimator("logprobs"))  # no endpoint
    values = await meter.surprisal(["One thing.", "Another thing."])
    assert meter.estimator.name == "compression" and len(values) == 2
    assert "'logprobs' unavailable" in caplog.text


async def test_entailment_coverage_asks_the_aggregator_once():
    generate = Replies("1: yes\n2: no")
    meter = MergeMeter(CompressionSurprisal(), coverage="entailment", generate=generate)
    units = [Unit("Count apples.", ("a",)), Unit("Check twice.", ("b",))]
    assert await meter.covered(units, "Tally the apples. Check twice.") == [True, False]
    assert len(generate.requests) == 1 and "1. Count apples." in generate.requests[0][1]
    with pytest.raises(ValueError, match="needs an aggregator model"):
        MergeMeter(CompressionSurprisal(), coverage="entailment")


def _candidate(covered: int, uid: float, ratio: float, body: str = "x") -> dict:
    return {"body": body, "covered": covered, "missing": [], "surprisal": [1.0], "uid_score": uid, "length_ratio": ratio}


def test_best_candidate_reaches_coverage_then_most_targets_then_coverage_then_uid_then_first():
    targets = MergeTargets(min_coverage=0.9, max_length_ratio=1.5, max_uid_score=0.3)
    low_coverage_all_else = _candidate(8, 0.1, 1.0)
    covered_too_long = _candidate(10, 0.2, 2.0)
    covered_in_budget = _candidate(9, 0.5, 1.2)
    assert best_candidate([low_coverage_all_else, covered_too_long], targets, 10) == 1
    assert best_candidate([covered_too_long, covered_in_budget], targets, 10) == 0  # ties on targets met: more coverage
    assert best_candidate([_candidate(10, 0.4, 2.0), _candidate(10, 0.35, 2.0)], targets, 10) == 1  # then lower UID
    assert best_candidate([_candidate(10, 0.1, 1.0), _candidate(10, 0.1, 1.0)], targets, 10) == 0  # then the first


CLIENTS = {
    "a": f"Restate the question. Count every fruit in the list. {FORMAT}",
    "b": f"Count every fruit in the list. Double-check the total before answering. {FORMAT}",
    "c": f"Ignore items that are vegetables. {FORMAT}",
}


async def test_a_dropping_merge_is_repaired_with_a_prompt_naming_what_is_missing():
    generate = Replies("Restate the question.", "Restate the question. Count every fruit in the list. Double-check the total before answering. Ignore items that are vegetables.")
    aggregator = create_aggregator("uid", generate)
    meter = MergeMeter(CompressionSurprisal())
    progress = await start_merge(aggregator, meter, CLIENTS, format_instruction=FORMAT, enforce=True)
    targets = targets_of(progress, min_coverage=0.9, max_length_ratio=3.0)
    assert progress["candidates"][0]["missing"] == ["Count every fruit in the list.", "Double-check the total before answering.", "Ignore items that are vegetables."]
    assert needs_repair(progress, targets, repair_tries=2)
    request = repair_request(progress, targets)
    assert "missing from your merge" in request and "- Ignore items that are vegetables." in request
    assert "<MERGED>\nRestate the question.\n</MERGED>" in request and '<PROMPT client="c">' in request
    progress = await repair_once(aggregator, meter, progress, targets)
    assert generate.requests[1][1] == request
    body, record = finish_merge(progress, targets)
    assert record["coverage"] == 1.0 and record["repairs"] == 1 and not record["fallback"]
    assert compose_prompt(body, FORMAT).endswith(FORMAT)


async def test_no_candidate_reaching_coverage_falls_back_to_the_deduplicated_concatenation():
    generate = Replies("Restate the question.")  # every reply drops three of four instructions
    aggregator = create_aggregator("uid", generate)
    meter = MergeMeter(CompressionSurprisal())
    progress = await start_merge(aggregator, meter, CLIENTS, format_instruction=FORMAT, enforce=True)
    targets = targets_of(progress, min_coverage=0.9, max_length_ratio=1.5)
    progress = await repair_once(aggregator, meter, progress, targets)
    assert not needs_repair(progress, targets, repair_tries=5)  # the same reply again: asking more would not help
    body, record = finish_merge(progress, targets)
    assert body == "Restate the question. Count every fruit in the list. Double-check the total before answering. Ignore items that are vegetables."
    assert record["fallback"] and record["coverage"] == 1.0 and record["missing"] == []
    assert record["uid_score"] == record["concat_uid_score"] and record["met_targets"] is False  # too long: 1.5x is the cap
    assert record["repairs"] == 1 and record["units"] == 4


@pytest.mark.parametrize("strategy", ["concat", "summarize"])
async def test_concat_and_summarize_are_measured_not_enforced(strategy):
    generate = Replies("Restate the question.")
    aggregator = create_aggregator(strategy, None if strategy == "concat" else generate)
    progress = await start_merge(aggregator, MergeMeter(CompressionSurprisal()), CLIENTS, format_instruction=FORMAT, enforce=aggregator.enforces_targets)
    targets = targets_of(progress, min_coverage=0.9, max_length_ratio=1.5)
    assert not needs_repair(progress, targets, repair_tries=2)
    body, record = finish_merge(progress, targets)
    assert record["met_targets"] is None and record["repairs"] == 0 and not record["fallback"]
    assert record["strategy"] == strategy and len(record["surprisal"]["sentences"]) == len(split_units(body))
    if strategy == "summarize":
        assert body == "Restate the question." and record["coverage"] == 0.25  # kept although it misses three of four
    else:
        assert record["coverage"] == 1.0


def test_the_repair_prompt_names_dense_and_sparse_sentences_and_the_length_when_those_targets_are_missed():
    body = "Count apples. Count every apple, pear, plum and fig twice in order. Count pears. Count plums."
    candidate = {"body": body, "covered": 4, "missing": [], "surprisal": [10.0, 40.0, 12.0, 0.0], "uid_score": 0.9, "length_ratio": 2.0}
    progress = {"units": [["u", ["a"]]] * 4, "client_bodies": {"a": "Count apples."}, "candidates": [candidate], "concat": candidate | {"uid_score": 0.5}}
    targets = targets_of(progress, min_coverage=0.9, max_length_ratio=1.5)
    request = repair_request(progress, targets)
    assert "pack in too much information; split or simplify them:\n- Count every apple, pear, plum and fig twice in order." in request
    assert "add little new information; merge them into others or cut repetition:\n- Count plums." in request
    assert "2.00 times as long as the longest client prompt; keep it within 1.50 times" in request
    assert "missing from your merge" not in request
    within = repair_request({**progress, "candidates": [candidate | {"uid_score": 0.4, "length_ratio": 1.0}]}, targets)
    assert "too much information" not in within and "times as long" not in within  # only what was missed
