"""The stage-1 corpus: SQuAD sentences, other GLUE tasks' sentences, user files; never the target task's text."""
import pytest

from edgeslim.distill.corpus import general_corpus, split_sentences
from edgeslim.errors import DataError


def test_split_sentences():
    assert split_sentences("It was built in 1850. Smith lived there! Why? Because 3 rivers meet.") == [
        "It was built in 1850.", "Smith lived there!", "Because 3 rivers meet."]


def test_general_corpus_sources(tiny_data, tmp_path):
    squad_only = general_corpus(("squad",))
    # 5 paragraphs of 2 sentences; the second is the same in all of them (kept once)
    assert len(squad_only) == 6 and sum("founded" in s for s in squad_only) == 5
    with_sst2 = general_corpus(("glue",), exclude_task="cola")
    assert len(with_sst2) == len(set(with_sst2)) > 50                         # de-duplicated SST-2 sentences
    f = tmp_path / "extra.txt"
    f.write_text("first passage here\n\nsecond passage here\n")
    got = general_corpus(("squad",), [str(f)], seed=1)
    assert len(got) == 8 and "second passage here" in got
    assert general_corpus(("squad",), [str(f)], seed=1) == got               # seeded order


def test_general_corpus_errors(tiny_data, tmp_path):
    with pytest.raises(DataError, match="unknown corpus source 'squat'.*squad"):
        general_corpus(("squat",))
    with pytest.raises(DataError, match="corpus file not found"):
        general_corpus((), [str(tmp_path / "nope.txt")])
    with pytest.raises(DataError, match="corpus is empty"):
        general_corpus(("glue",), exclude_task="sst2")
