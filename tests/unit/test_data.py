"""Data loaders, their errors, split slicing and client partitioning."""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest

from fedtextgrad_graph.config import TaskConfig, load_config
from fedtextgrad_graph.data import (
    DataError,
    Example,
    build_federated_data,
    load_bbh,
    load_csv,
    load_gsm8k,
    load_jsonl,
    load_task,
)


def write_bbh(path: Path, n: int, prefix: str = "q") -> Path:
    examples = [{"input": f"{prefix}{i}", "target": str(i)} for i in range(n)]
    path.write_text(json.dumps({"examples": examples}), encoding="utf-8")
    return path


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- loaders -----------------------------------------------------------------------------------


def test_load_bbh(tmp_path: Path) -> None:
    path = tmp_path / "bbh.json"
    path.write_text(
        json.dumps({"canary": "x", "examples": [{"input": " How many? ", "target": 3}, {"input": "b", "target": "(A)"}]}),
        encoding="utf-8",
    )
    assert load_bbh(path) == [Example("How many?", "3"), Example("b", "(A)")]


def test_load_gsm8k_target_after_hashes_without_commas(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "gsm8k.jsonl",
        json.dumps({"question": "How much?", "answer": "5 * 250 = <<5*250=1250>>1,250\n#### 1,250"}),
        "",
        json.dumps({"question": "Owed?", "answer": "She owes 7 dollars.\n#### -7"}),
    )
    assert load_gsm8k(path) == [Example("How much?", "1250"), Example("Owed?", "-7")]


def test_load_jsonl_custom_fields(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "data.jsonl",
        json.dumps({"prompt": "2+2", "label": 4, "extra": True}),
        json.dumps({"prompt": "sort b a", "label": "a b"}),
    )
    examples = load_jsonl(path, input_field="prompt", target_field="label")
    assert examples == [Example("2+2", "4"), Example("sort b a", "a b")]


def test_load_csv_custom_columns(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "data.csv", "id,question,answer", '1,"Add 1, 2",3', "2,Is it?,yes")
    examples = load_csv(path, input_field="question", target_field="answer")
    assert examples == [Example("Add 1, 2", "3"), Example("Is it?", "yes")]


def test_load_csv_with_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("input,target\nq,1\n", encoding="utf-8-sig")
    assert load_csv(path) == [Example("q", "1")]


# --- malformed files ---------------------------------------------------------------------------


def test_jsonl_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", json.dumps({"input": "a", "target": "1"}), '{"input": "b",')
    with pytest.raises(DataError, match="invalid JSON") as info:
        load_jsonl(path)
    assert f"{path}:2:" in str(info.value)


def test_jsonl_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "bad.jsonl",
        json.dumps({"input": "a", "target": "1"}),
        json.dumps({"input": "b", "target": "2"}),
        json.dumps({"input": "c"}),
    )
    with pytest.raises(DataError, match="missing field 'target'") as info:
        load_jsonl(path)
    assert f"{path}:3:" in str(info.value)


def test_bbh_missing_examples(tmp_path: Path) -> None:
    path = tmp_path / "bbh.json"
    path.write_text(json.dumps({"data": []}), encoding="utf-8")
    with pytest.raises(DataError, match='"examples"') as info:
        load_bbh(path)
    assert str(path) in str(info.value)


def test_bbh_example_missing_target(tmp_path: Path) -> None:
    path = tmp_path / "bbh.json"
    path.write_text(json.dumps({"examples": [{"input": "a", "target": "1"}, {"input": "b"}]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"examples\[1\]") as info:
        load_bbh(path)
    assert str(path) in str(info.value)


def test_bbh_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bbh.json"
    path.write_text('{\n  "examples": [\n    {"input": "a",, }\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON") as info:
        load_bbh(path)
    assert f"{path}:3:" in str(info.value)


def test_gsm8k_answer_without_hashes(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "gsm8k.jsonl",
        json.dumps({"question": "q1", "answer": "#### 1"}),
        json.dumps({"question": "q2", "answer": "The answer is 2"}),
    )
    with pytest.raises(DataError, match="####") as info:
        load_gsm8k(path)
    assert f"{path}:2:" in str(info.value)


def test_csv_missing_column(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "data.csv", "question,answer", "a,1")
    with pytest.raises(DataError, match="missing column 'target'") as info:
        load_csv(path, input_field="question")
    assert f"{path}:1:" in str(info.value)


def test_csv_empty_value_names_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "data.csv", "input,target", "a,1", "b,")
    with pytest.raises(DataError, match="target") as info:
        load_csv(path)
    assert f"{path}:3:" in str(info.value)


@pytest.mark.parametrize("loader", [load_bbh, load_gsm8k, load_jsonl, load_csv])
def test_missing_file(tmp_path: Path, loader) -> None:
    path = tmp_path / "absent.data"
    with pytest.raises(DataError, match="not found") as info:
        loader(path)
    assert str(path) in str(info.value)


# --- splits ------------------------------------------------------------------------------------


def test_load_task_slices_ranges(tmp_path: Path) -> None:
    write_bbh(tmp_path / "t.json", 10)
    task = TaskConfig(format="bbh", path="t.json", split={"train": (0, 4), "validation": (4, 7), "test": (7, 10)})
    splits = load_task("t", task, tmp_path)
    assert [e.input for e in splits.train] == ["q0", "q1", "q2", "q3"]
    assert [e.input for e in splits.validation] == ["q4", "q5", "q6"]
    assert [e.input for e in splits.test] == ["q7", "q8", "q9"]


def test_load_task_test_from_test_path(tmp_path: Path) -> None:
    write_bbh(tmp_path / "train.json", 6)
    write_bbh(tmp_path / "test.json", 3, prefix="t")
    task = TaskConfig(
        format="bbh", path="train.json", test_path="test.json",
        split={"train": (0, 3), "validation": (3, 6), "test": (1, 3)},
    )
    assert [e.input for e in load_task("t", task, tmp_path).test] == ["t1", "t2"]


def test_load_task_range_beyond_file(tmp_path: Path) -> None:
    path = write_bbh(tmp_path / "t.json", 8)
    task = TaskConfig(format="bbh", path="t.json", split={"train": (0, 4), "validation": (4, 6), "test": (6, 9)})
    with pytest.raises(DataError, match=r"tasks\.t test split needs examples \[6, 9\) but the file has 8") as info:
        load_task("t", task, tmp_path)
    assert str(path) in str(info.value)


def write_gsm8k(path: Path, n: int, prefix: str) -> Path:
    lines = [json.dumps({"question": f"{prefix}{i}", "answer": f"work\n#### {i}"}) for i in range(n)]
    return write_lines(path, *lines)


def test_gsm8k_split_shuffles_like_the_paper_code(tmp_path: Path) -> None:
    # The paper's code: shuffle the train list with random.Random(0), the test list with a
    # fresh random.Random(0), then train[:50], validation = train[200:300], test = test[300:400].
    write_gsm8k(tmp_path / "train.jsonl", 450, "train-")
    write_gsm8k(tmp_path / "test.jsonl", 450, "test-")
    train_ids, test_ids = list(range(450)), list(range(450))
    random.Random(0).shuffle(train_ids)
    random.Random(0).shuffle(test_ids)
    task = TaskConfig(format="gsm8k", path="train.jsonl", test_path="test.jsonl", split="gsm8k")
    splits = load_task("gsm8k", task, tmp_path)
    assert [e.input for e in splits.train] == [f"train-{i}" for i in train_ids[:50]]
    assert [e.target for e in splits.train] == [str(i) for i in train_ids[:50]]
    assert [e.input for e in splits.validation] == [f"train-{i}" for i in train_ids[200:300]]
    assert [e.input for e in splits.test] == [f"test-{i}" for i in test_ids[300:400]]


def test_numeric_ranges_on_gsm8k_files_keep_file_order(tmp_path: Path) -> None:
    write_gsm8k(tmp_path / "train.jsonl", 12, "q")
    task = TaskConfig(format="gsm8k", path="train.jsonl", split={"train": (0, 4), "validation": (4, 8), "test": (8, 12)})
    splits = load_task("gsm8k", task, tmp_path)
    assert [e.input for e in splits.train + splits.validation + splits.test] == [f"q{i}" for i in range(12)]


# --- federated partitioning -------------------------------------------------------------------


def homogeneous_config(
    tmp_path: Path, *, num_clients: int = 3, seed: int = 0, evaluation: str = "federated", train: int = 10
):
    write_bbh(tmp_path / "counting.json", 40)
    config = tmp_path / f"run-{seed}-{num_clients}-{evaluation}-{train}.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [run]
            seed = {seed}

            [tasks.counting]
            format = "bbh"
            path = "counting.json"
            split = {{ train = [0, {train}], validation = [20, 30], test = [30, 40] }}

            [federation]
            num_clients = {num_clients}

            [evaluation]
            mode = "{evaluation}"
            """
        ),
        encoding="utf-8",
    )
    return load_config(config)


def test_homogeneous_partition_is_disjoint_and_covers_the_split(tmp_path: Path) -> None:
    data = build_federated_data(homogeneous_config(tmp_path))
    splits = data.tasks["counting"]
    assert list(data.clients) == ["client-1", "client-2", "client-3"]
    for part in ("train", "validation"):
        shares = [getattr(c, part) for c in data.clients.values()]
        assert all(shares), part
        combined = [e.input for share in shares for e in share]
        assert len(combined) == len(set(combined)), f"{part} shares overlap"
        assert sorted(combined) == sorted(e.input for e in getattr(splits, part))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert {c.task for c in data.clients.values()} == {"counting"}
    assert len(splits.test) == 10


def test_homogeneous_partition_is_seeded(tmp_path: Path) -> None:
    first = build_federated_data(homogeneous_config(tmp_path, seed=0))
    again = build_federated_data(homogeneous_config(tmp_path, seed=0))
    other = build_federated_data(homogeneous_config(tmp_path, seed=1))
    assert first.clients == again.clients
    assert first.clients != other.clients
    # Shuffled, not the file order cut into stripes.
    assert [e.input for e in first.clients["client-1"].train] != ["q0", "q3", "q6", "q9"]


def test_more_clients_than_examples(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"tasks\.counting train: 11 clients but only 10 examples"):
        build_federated_data(homogeneous_config(tmp_path, num_clients=11, evaluation="server"))


def test_more_clients_than_validation_examples_under_federated_evaluation(tmp_path: Path) -> None:
    config = homogeneous_config(tmp_path, num_clients=11, train=11)  # 11 train, 10 validation
    with pytest.raises(DataError, match=r"tasks\.counting validation: 11 clients but only 10 examples"):
        build_federated_data(config)


def test_server_evaluation_keeps_validation_on_the_server(tmp_path: Path) -> None:
    data = build_federated_data(homogeneous_config(tmp_path, num_clients=11, train=11, evaluation="server"))
    assert all(c.validation == [] for c in data.clients.values())
    assert all(len(c.train) == 1 for c in data.clients.values())
    assert len(data.tasks["counting"].validation) == 10


def test_heterogeneous_clients_get_their_own_task(tmp_path: Path) -> None:
    write_bbh(tmp_path / "counting.json", 6, prefix="count")
    write_lines(
        tmp_path / "words.jsonl",
        *(json.dumps({"question": f"word{i}", "answer": f"#### {i}"}) for i in range(6)),
    )
    (tmp_path / "run.toml").write_text(
        textwrap.dedent(
            """
            [tasks.counting]
            format = "bbh"
            path = "counting.json"
            split = { train = [0, 2], validation = [2, 4], test = [4, 6] }

            [tasks.words]
            format = "gsm8k"
            path = "words.jsonl"
            split = { train = [0, 2], validation = [2, 4], test = [4, 6] }

            [federation]
            partition = "heterogeneous"
            clients = [{ id = "w", task = "words" }, { id = "c", task = "counting" }]

            [evaluation]
            mode = "federated"
            """
        ),
        encoding="utf-8",
    )
    data = build_federated_data(load_config(tmp_path / "run.toml"))
    assert list(data.clients) == ["w", "c"]
    assert data.clients["w"].task == "words"
    assert sorted(e.input for e in data.clients["w"].train) == ["word0", "word1"]
    assert sorted(e.input for e in data.clients["w"].validation) == ["word2", "word3"]
    assert data.clients["c"].task == "counting"
    assert sorted(e.input for e in data.clients["c"].train) == ["count0", "count1"]
    assert set(data.tasks) == {"counting", "words"}
    assert [e.target for e in data.tasks["words"].test] == ["4", "5"]


def test_csv_keeps_newlines_inside_quoted_fields(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('input,target\n"first line\nsecond line",2\nplain,3\n', encoding="utf-8")
    examples = load_csv(path)
    assert [e.input for e in examples] == ["first line\nsecond line", "plain"]
    bad = tmp_path / "bad.csv"
    bad.write_text('input,target\n"a\nb",1\nc\n', encoding="utf-8")
    with pytest.raises(DataError, match=f"{bad}:4"):
        load_csv(bad)


def test_jsonl_strings_may_hold_unicode_line_separators(tmp_path: Path) -> None:
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"input": "a\u2028b\u0085c", "target": "1"}, ensure_ascii=False) + "\n" + '{"input": "d"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=f"{path}:2: missing field 'target'"):
        load_jsonl(path)
    path.write_text(json.dumps({"input": "a\u2028b", "target": "1"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_jsonl(path)[0].input == "a\u2028b"


def test_a_site_cuts_the_same_gsm8k_split_as_the_server(tmp_path: Path) -> None:
    from fedtextgrad_graph.site.config import load_site_config
    from fedtextgrad_graph.site.runner import SiteRunner

    write_gsm8k(tmp_path / "train.jsonl", 450, "train-")
    write_gsm8k(tmp_path / "test.jsonl", 450, "test-")
    site_toml = write_lines(
        tmp_path / "site.toml",
        "[site]",
        'client_id = "site-a"',
        "[task]",
        'format = "gsm8k"',
        'path = "train.jsonl"',
        'test_path = "test.jsonl"',
        'split = "gsm8k"',
        "[models]",
        'model = "simulated"',
    )
    site = SiteRunner(load_site_config(site_toml)).site.data
    task = TaskConfig(format="gsm8k", path="train.jsonl", test_path="test.jsonl", split="gsm8k")
    server = load_task("gsm8k", task, tmp_path)
    assert (site.train, site.validation, site.test) == (server.train, server.validation, server.test)
