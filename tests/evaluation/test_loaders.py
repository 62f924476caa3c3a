"""Readers of the local evaluation sets: hand files (errors name file, line, field) and the real files'
counts from the shared data README."""

from __future__ import annotations

import os

import pytest

from embedlight.evaluation.loaders import load_pairs, load_senteval, load_snli, subsample


def write(path, text: str, encoding: str = "utf-8") -> str:
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return str(path)


def test_pairs_tsv_without_and_with_header(tmp_path):
    plain = load_pairs(write(tmp_path / "a.txt", "s1\tt1\t0\ns2\tt2\t1\n"))
    assert (plain.text1, plain.text2, plain.labels) == (["s1", "s2"], ["t1", "t2"], [0.0, 1.0])
    paws = load_pairs(write(tmp_path / "p.tsv", "id\tsentence1\tsentence2\tlabel\n7\ta\tb\t1\n8\tc\td\t0\n"))
    assert (paws.text1, paws.text2, paws.labels) == (["a", "c"], ["b", "d"], [1.0, 0.0])


def test_pairs_csv_with_bom_and_quotes(tmp_path):
    path = write(tmp_path / "bq.csv", '\ufeffsentence1,sentence2,label\n"x, y",z,1\nu,v,0\n')
    data = load_pairs(path)
    assert data.text1 == ["x, y", "u"] and data.labels == [1.0, 0.0]


def test_mrpc_header(tmp_path):
    path = write(
        tmp_path / "m.txt",
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t5\t6\tA b .\tC d .\n0\t7\t8\te\tf\n",
    )
    data = load_pairs(path)
    assert (data.text1, data.text2, data.labels) == (["A b .", "e"], ["C d .", "f"], [1.0, 0.0])


def test_pair_errors_name_file_line_field(tmp_path):
    bad = write(tmp_path / "bad.txt", "a\tb\t1\nc\td\tyes\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: field 'label' must be a number"):
        load_pairs(bad)
    short = write(tmp_path / "short.txt", "a\tb\t1\nc\t1\n")
    with pytest.raises(ValueError, match=r"short\.txt:2: expected 3 fields, got 2"):
        load_pairs(short)


def test_senteval_formats_and_errors(tmp_path):
    os.makedirs(tmp_path / "TREC")
    write(tmp_path / "TREC" / "train_5500.label", "NUM:dist How far ?\nLOC:city Where is it ?\n")
    write(tmp_path / "TREC" / "TREC_10.label", "HUM:ind Who ?\nnolabel here\n")
    train = load_senteval(str(tmp_path), "TREC", "train")
    assert train.labels == ["NUM", "LOC"] and train.texts == ["How far ?", "Where is it ?"]
    with pytest.raises(ValueError, match=r"TREC_10\.label:2: field 'label'"):
        load_senteval(str(tmp_path), "TREC", "test")
    with pytest.raises(ValueError, match="no official split"):
        load_senteval(str(tmp_path), "MR", "train")


def test_subsample_is_seeded_sorted_and_complete_without_limit():
    a = subsample(100, 10, seed=3)
    assert list(a) == sorted(a) and len(set(a)) == 10
    assert list(a) == list(subsample(100, 10, seed=3)) and list(a) != list(subsample(100, 10, seed=4))
    assert list(subsample(5, None)) == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- real files (README counts)


@pytest.mark.parametrize(
    ("rel", "n", "n_pos"),
    [
        ("atec/ATEC.test.data", 20000, 3610),
        ("atec/ATEC.valid.data", 20000, 3688),
        ("bq/test.csv", 10000, 5000),
        ("bq/dev.csv", 10000, 5000),
        ("lcqmc/test.txt", 12500, 6250),
        ("lcqmc/dev.txt", 8802, None),
        ("afqmc/dev.txt", 4316, 1338),
        ("afqmc/train.txt", 34334, 10573),
        ("pawsx_zh/test_2k.tsv", 2000, None),
        ("pawsx_zh/dev_2k.tsv", 2000, None),
        ("stsb_zh/STS-B.test.data", 1361, None),
        ("stsb_zh/STS-B.valid.data", 1458, None),
        ("stsb_zh/STS-B.train.data", 5231, None),
        ("senteval_classification/MRPC/msr_paraphrase_train.txt", 4076, None),
        ("senteval_classification/MRPC/msr_paraphrase_test.txt", 1725, None),
    ],
)
def test_real_pair_files(shared_data, rel, n, n_pos):
    data = load_pairs(os.path.join(shared_data, rel))
    assert len(data) == n
    if n_pos is not None:
        assert sum(data.labels) == n_pos


@pytest.mark.parametrize(
    ("task", "split", "n"),
    [
        ("MR", None, 10662),
        ("CR", None, 3771),
        ("SUBJ", None, 10000),
        ("MPQA", None, 10603),
        ("SST2", "train", 67349),
        ("SST2", "dev", 872),
        ("SST2", "test", 1821),
        ("SST5", "train", 8544),
        ("SST5", "dev", 1101),
        ("SST5", "test", 2210),
        ("TREC", "train", 5452),
        ("TREC", "test", 500),
    ],
)
def test_real_senteval(shared_data, task, split, n):
    data = load_senteval(os.path.join(shared_data, "senteval_classification"), task, split)
    assert len(data) == n
    n_labels = {"SST5": 5, "TREC": 6}.get(task, 2)
    assert len(set(data.labels)) == n_labels


def test_real_senteval_per_file_counts(shared_data):
    data = load_senteval(os.path.join(shared_data, "senteval_classification"), "MPQA")
    assert data.labels.count("pos") == 3311 and data.labels.count("neg") == 7292


@pytest.mark.parametrize(("split", "n"), [("dev", 9842), ("test", 9824)])
def test_real_snli(shared_data, split, n):
    full = load_snli(os.path.join(shared_data, "snli_en"), split, drop_neutral=False)
    assert len(full) == n
    kept = load_snli(os.path.join(shared_data, "snli_en"), split)
    assert 0 < len(kept) < n and set(kept.labels) == {0.0, 1.0}
