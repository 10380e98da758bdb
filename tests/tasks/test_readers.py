import pytest

from edgeslim.errors import ConfigError, DataError
from edgeslim.tasks import get_task, label_counts

# (task, split, rows, label counts) from ../shared/data/README.md; train-full = the whole train file
GLUE_COUNTS = [
    ("sst2", "train-full", 67349, {1: 37569, 0: 29780}),
    ("sst2", "dev", 872, {1: 444, 0: 428}),
    ("cola", "train-full", 8551, {1: 6023, 0: 2528}),
    ("cola", "dev", 1043, {1: 721, 0: 322}),
    ("mrpc", "train-full", 3668, {1: 2474, 0: 1194}),
    ("mrpc", "dev", 408, {1: 279, 0: 129}),
    ("qnli", "dev", 5463, {0: 2702, 1: 2761}),
    ("rte", "train-full", 2490, {0: 1249, 1: 1241}),
    ("rte", "dev", 277, {0: 146, 1: 131}),
    ("wnli", "train-full", 635, {1: 312, 0: 323}),
    ("wnli", "dev", 71, {1: 31, 0: 40}),
]


@pytest.mark.realdata
@pytest.mark.parametrize("task,split,rows,counts", GLUE_COUNTS)
def test_glue_readers_match_official_counts(real_data, monkeypatch, task, split, rows, counts):
    monkeypatch.setenv("EDGESLIM_DATA", str(real_data))
    ex = get_task(task).load(split)
    assert len(ex) == rows and label_counts(ex) == counts
    if get_task(task).options.get("text_b") is not None:
        assert all(e.text_b for e in ex)


@pytest.mark.realdata
def test_sst2_keeps_text_and_mrpc_strips_bom(real_data, monkeypatch):
    monkeypatch.setenv("EDGESLIM_DATA", str(real_data))
    first = get_task("sst2").load("dev")[0]
    assert first.text_a == "it 's a charming and often affecting journey . " and first.label == 1
    mrpc = get_task("mrpc").load("dev")
    assert mrpc[0].text_a.startswith("He said the foodservice pie business")


@pytest.mark.realdata
def test_squad_article_split_is_disjoint_and_complete(real_data, monkeypatch):
    monkeypatch.setenv("EDGESLIM_DATA", str(real_data))
    full = get_task("squad").load("dev")
    tr = get_task("squad-dev-train").load("dev")
    ev = get_task("squad-dev-eval").load("dev")
    assert len(full) == 10570 and len(tr) + len(ev) == 10570
    assert not ({e.title for e in tr} & {e.title for e in ev})
    assert len({e.title for e in ev}) == 9 and len({e.title for e in tr}) == 39


@pytest.mark.realdata
@pytest.mark.parametrize("task,split,rows", [("imagenette", "val", 2000), ("cifar10", "test", 10000)])
def test_image_folders(real_data, monkeypatch, task, split, rows):
    monkeypatch.setenv("EDGESLIM_DATA", str(real_data))
    ex = get_task(task).load(split)
    assert len(ex) == rows and set(label_counts(ex).values()) == {rows // 10}


def test_malformed_row_names_file_and_line(tmp_path, monkeypatch):
    d = tmp_path / "glue" / "SST-2"
    d.mkdir(parents=True)
    (d / "dev.tsv").write_text("sentence\tlabel\ngood film \t1\nno tab here\n")
    monkeypatch.setenv("EDGESLIM_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"dev.tsv:3: expected 2 tab-separated columns"):
        get_task("sst2").load("dev")
    (d / "dev.tsv").write_text("sentence\tlabel\ngood film \tpositive\n")
    with pytest.raises(DataError, match=r"dev.tsv:2: label 'positive' is not one of 0, 1"):
        get_task("sst2").load("dev")


def test_unknown_task_and_missing_split(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="Did you mean 'sst2'"):
        get_task("sst3")
    assert get_task("SST-2").name == "sst2"
    monkeypatch.setenv("EDGESLIM_DATA", str(tmp_path))
    with pytest.raises(DataError, match="qnli train data not found|no split 'train'"):
        get_task("qnli").load("train")
    with pytest.raises(DataError, match="sst2 dev data not found at .*EDGESLIM_DATA"):
        get_task("sst2").load("dev")


def test_stsb_regression_format(tmp_path, monkeypatch):
    d = tmp_path / "glue" / "STS-B"
    d.mkdir(parents=True)
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    rows = ["0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
            "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man plays a flute.\tA man plays a guitar.\t1.6"]
    (d / "dev.tsv").write_text("\n".join([head] + rows) + "\n")
    monkeypatch.setenv("EDGESLIM_DATA", str(tmp_path))
    t = get_task("stsb")
    ex = t.load("dev")
    assert t.kind == "regression" and t.num_labels == 1
    assert [e.label for e in ex] == [5.0, 1.6] and ex[1].text_b == "A man plays a guitar."
    (d / "dev.tsv").write_text("\n".join([head, rows[0].replace("5.000", "high")]) + "\n")
    with pytest.raises(DataError, match="dev.tsv:2: score 'high' is not a number"):
        t.load("dev")
