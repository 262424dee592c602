"""Write the small synthetic data files used by the example configs.

    python examples/make_data.py

The tasks mimic BIG-Bench Hard object counting and multistep arithmetic (BBH JSON) and
GSM8K word problems (JSONL with "#### answer"), with correct targets computed here.
``data/`` serves the single-machine examples; each ``multisite/site-*/`` folder gets a data
file of its own, with examples no other site has.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent / "data"
MULTISITE = Path(__file__).parent / "multisite"
WORDS = ["zero", "one", "two", "three", "four", "five"]
CATEGORIES = {
    "fruits": ["apple", "banana", "peach", "plum", "grape", "orange", "nectarine", "strawberry"],
    "musical instruments": ["piano", "flute", "violin", "trumpet", "drum", "clarinet", "trombone", "accordion"],
    "vegetables": ["carrot", "cabbage", "onion", "potato", "yam", "celery stalk", "lettuce head", "garlic"],
    "animals": ["dog", "cat", "rabbit", "goat", "cow", "pig", "snake", "frog"],
}


def _plural(noun: str, n: int) -> str:
    if n == 1:
        return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    suffix = "es" if noun.endswith(("ch", "sh", "o")) else "s"
    return f"{WORDS[n]} {noun}{suffix}"


def object_counting(rng: random.Random, n: int) -> list[dict[str, str]]:
    examples = []
    for _ in range(n):
        category = rng.choice(sorted(CATEGORIES))
        items = rng.sample(CATEGORIES[category], rng.randint(2, 5))
        counts = [rng.randint(1, 3) for _ in items]
        listed = [_plural(item, c) for item, c in zip(items, counts, strict=True)]
        text = " and ".join(listed) if len(listed) == 2 else ", ".join(listed[:-1]) + f", and {listed[-1]}"
        examples.append({"input": f"I have {text}. How many {category} do I have?", "target": str(sum(counts))})
    return examples


def multistep_arithmetic(rng: random.Random, n: int) -> list[dict[str, str]]:
    examples = []
    for _ in range(n):
        a, b, c, d = (rng.randint(-9, 9) for _ in range(4))
        op1, op2, op3 = (rng.choice("+-*") for _ in range(3))
        expr = f"(({a} {op1} {b}) {op2} ({c} {op3} {d}))"
        examples.append({"input": f"{expr} =", "target": str(eval(expr))})
    return examples


def word_problems(rng: random.Random, n: int) -> list[dict[str, str]]:
    names = ["Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Gina", "Hugo"]
    lines = []
    for _ in range(n):
        name, have, buy, give = rng.choice(names), rng.randint(3, 20), rng.randint(2, 15), rng.randint(1, 5)
        answer = have + buy - give
        question = (
            f"{name} has {have} marbles. {name} buys {buy} more and then gives {give} to a friend. "
            f"How many marbles does {name} have now?"
        )
        lines.append({"question": question, "answer": f"{have} + {buy} - {give} = {answer}\n#### {answer}"})
    return lines


def _write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    with path.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def main() -> None:
    HERE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(2025)
    for name, make in (("object_counting", object_counting), ("multistep_arithmetic", multistep_arithmetic)):
        (HERE / f"{name}.json").write_text(json.dumps({"examples": make(rng, 40)}, indent=1) + "\n")
    _write_jsonl(HERE / "word_problems.jsonl", word_problems(rng, 40))
    sites = random.Random(7)
    (MULTISITE / "site-a" / "data.json").write_text(json.dumps({"examples": object_counting(sites, 24)}, indent=1) + "\n")
    (MULTISITE / "site-b" / "data.json").write_text(json.dumps({"examples": multistep_arithmetic(sites, 24)}, indent=1) + "\n")
    _write_jsonl(MULTISITE / "site-c" / "data.jsonl", word_problems(sites, 24))


if __name__ == "__main__":
    main()
