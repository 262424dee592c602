"""Every prompt this package sends to an LLM, as named constants."""

from __future__ import annotations

SYSTEM_PROMPT_ROLE = (
    "structured system prompt to a somewhat capable language model that specifies "
    "the behavior and strategies for the QA task"
)
QUERY_ROLE = "query to the language model"
TARGET_ROLE = "correct answer for the query"

METRIC_PURPOSES = {
    "last_number": "The runtime of a string-based function that checks if the last number in the prediction equals the correct answer (1 = correct, 0 = wrong).",
    "exact": "The runtime of a string-based function that checks if the final answer of the prediction exactly matches the correct answer (1 = correct, 0 = wrong).",
    "judge": "An LLM judge that decides whether the prediction reaches the correct answer (1 = correct, 0 = wrong).",
}

FORMAT_CONSTRAINT = (
    "Keep this output-format instruction word for word as the last sentence of the prompt: {format_instruction}"
)

# Aggregation. Client prompts are wrapped in PROMPT tags so a merge can name its sources.
PROMPT_ITEM = '<PROMPT client="{client_id}">\n{prompt}\n</PROMPT>'

SUMMARIZE_TEMPLATE = (
    "Merge the following prompts, written by several clients for the same kind of task, into "
    "a single, cohesive system prompt that preserves all of their distinct information. "
    "Remove repetition. Do not include any output-format instruction; it will be appended "
    "after your text. Reply with the merged prompt only.\n\n"
    "Prompts to merge:\n{prompts}"
)

UID_TEMPLATE = (
    "Merge the following prompts, written by several clients for the same kind of task, into "
    "a single, cohesive system prompt that preserves all of their distinct information. "
    "Apply the Uniform Information Density principle: spread information evenly across the "
    "prompt, so that every sentence carries a similar amount of new, non-redundant guidance; "
    "merge sentences that repeat one another and split sentences that pack in several ideas. "
    "Do not include any output-format instruction; it will be appended after your text. "
    "Reply with the merged prompt only.\n\n"
    "Prompts to merge:\n{prompts}"
)

AGGREGATOR_SYSTEM_PROMPT = "You merge system prompts for language models. You reply with the merged prompt only."

JUDGE_SYSTEM_PROMPT = (
    "You are a strict grader. You compare a model's response to a reference answer and decide "
    "whether the response reaches the same final answer."
)

JUDGE_TEMPLATE = (
    "<QUESTION>\n{question}\n</QUESTION>\n\n"
    "<RESPONSE>\n{prediction}\n</RESPONSE>\n\n"
    "<REFERENCE_ANSWER>\n{target}\n</REFERENCE_ANSWER>\n\n"
    "Does the response reach the reference answer? Reply with <ACCURACY>1</ACCURACY> if it "
    "does and <ACCURACY>0</ACCURACY> if it does not."
)

# A uid merge that misses its targets is sent back with what to fix (aggregation/repair.py).
REPAIR_TEMPLATE = (
    "You merged the following client prompts into one system prompt, but the merge needs repair.\n\n"
    "Client prompts:\n{prompts}\n\n"
    "Your merged prompt:\n<MERGED>\n{candidate}\n</MERGED>\n\n"
    "{problems}\n\n"
    "Rewrite the merged prompt so that it fixes these problems while keeping every distinct "
    "instruction of the client prompts and spreading information evenly across sentences (the "
    "Uniform Information Density principle). Do not include any output-format instruction; it "
    "will be appended after your text. Reply with the revised merged prompt only."
)
REPAIR_MISSING = "These client instructions are missing from your merge; state each of them:\n{instructions}"
REPAIR_DENSE = "These sentences pack in too much information; split or simplify them:\n{sentences}"
REPAIR_SPARSE = "These sentences add little new information; merge them into others or cut repetition:\n{sentences}"
REPAIR_LENGTH = "Your merge is {ratio:.2f} times as long as the longest client prompt; keep it within {max_ratio:.2f} times."

# coverage = "entailment": the aggregator says which client instructions a merge states.
ENTAILMENT_TEMPLATE = (
    "Here is a system prompt:\n<PROMPT>\n{prompt}\n</PROMPT>\n\n"
    "For each numbered instruction below, does the prompt state it (possibly in other words)?\n"
    "{instructions}\n\n"
    "Reply with one line per instruction, in the form '1: yes' or '1: no', and nothing else."
)
