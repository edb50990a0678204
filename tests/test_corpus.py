"""The corpus lint on the shipped corpus, and the schema and lint rules on hand-made files."""
from pathlib import Path

import pytest

from models_onnx.corpus import CorpusError, is_heldout, load
from models_onnx.corpus.lint import MIN_BARS, MIN_EXCHANGES, MIN_TOPICS, anchor_in, lint

GOOD = '''topic = "trains"

[[exchange]]
id = "trains-001"
opponent = [
  "You came from the suburbs with a borrowed chain",
  "Your mama still drives you, you can't catch a train",
]
comeback = [
  "You talk about trains but you missed every ride",
  "I carry my city, you carry your pride",
]
tactics = ["turn-anchor"]
anchors = ["train", "mama"]
'''


def write(tmp_path: Path, text: str, name: str = "trains.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def shipped():
    corpus = load()
    return corpus, lint(corpus)


def test_shipped_corpus_passes_the_lint(shipped):
    corpus, report = shipped
    assert report.problems == []
    assert report.metrics["exchanges"] >= MIN_EXCHANGES
    assert report.metrics["bars"] >= MIN_BARS
    assert report.metrics["topics"] >= MIN_TOPICS
    assert report.metrics["distinct_bigrams"] >= 0.6


def test_heldout_split_is_by_exchange_and_disjoint_from_training(shipped):
    corpus, _ = shipped
    held = corpus.heldout()
    train = corpus.train()
    assert 0.05 < len(held) / len(corpus.exchanges) < 0.15
    assert {e.id for e in held}.isdisjoint(e.id for e in train.exchanges)
    train_bars = set(train.bars())
    assert not any(b in train_bars for e in held for b in e.comeback)
    # the split is a function of the id alone: stable when items are added
    assert all(is_heldout(e.id) for e in held)


def test_good_file_loads_and_passes(tmp_path):
    corpus = load(files=[write(tmp_path, GOOD)])
    assert len(corpus.exchanges) == 1 and corpus.exchanges[0].anchors == ("train", "mama")
    report = lint(corpus, totals=False)
    assert report.problems == []


def test_lint_counts_totals(tmp_path):
    report = lint(load(files=[write(tmp_path, GOOD)]), totals=True)
    assert any("exchanges; the corpus needs at least" in p for p in report.problems)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('topic = "trains"', 'topic = "cars"'), "must equal the file name"),
    (lambda t: t.replace('"trains-001"', '"train001"'), "id must look like 'trains-001'"),
    (lambda t: t.replace('["turn-anchor"]', '["diss"]'), "unknown tactics ['diss']"),
    (lambda t: t.replace('  "I carry my city, you carry your pride",\n', ''), "comeback: expected 2 bars, found 1"),
    (lambda t: t.replace('anchors = ["train", "mama"]', 'anchors = []'), "anchors: expected a non-empty list"),
    (lambda t: t + "rating = 5\n", "unknown keys ['rating']"),
    (lambda t: t.replace('opponent = [', 'opponent = [[', 1), "not valid TOML"),
])
def test_schema_errors_name_the_file_and_item(tmp_path, edit, message):
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(CorpusError) as e:
        load(files=[path])
    assert message in str(e.value) and "trains.toml" in str(e.value)


def test_duplicate_ids_across_files(tmp_path):
    a = write(tmp_path, GOOD)
    b = write(tmp_path / ".." / tmp_path.name, GOOD, "trains.toml")  # same file twice
    with pytest.raises(CorpusError, match="id trains-001 is also used"):
        load(files=[a, b])


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace("I carry my city, you carry your pride", "You talk about trains but you missed every ride"),
     "duplicate bar"),
    (lambda t: t.replace('anchors = ["train", "mama"]', 'anchors = ["train", "bicycle"]'),
     "anchor 'bicycle' is not in the opponent's bars"),
    (lambda t: t.replace("I carry my city, you carry your pride", "I won with pride"),
     "syllables in"),
    (lambda t: t.replace("you carry your pride", "you shitty pride"), "'shitty' is profanity"),
])
def test_lint_finds_problems(tmp_path, edit, problem):
    report = lint(load(files=[write(tmp_path, edit(GOOD))]), totals=False)
    assert any(problem in p for p in report.problems), report.problems


def test_explicit_items_need_a_clean_alternative(tmp_path):
    text = GOOD.replace("you carry your pride", "you shitty pride").replace(
        'anchors = ["train", "mama"]', 'anchors = ["train", "mama"]\nexplicit = true')
    report = lint(load(files=[write(tmp_path, text)]), totals=False)
    assert any("without a clean alternative" in p for p in report.problems)
    text += 'clean = ["You talk about trains but you miss every stop", "I carry my city, you carry a mop"]\n'
    assert lint(load(files=[write(tmp_path, text)]), totals=False).problems == []


def test_wrong_tactic_tags_lower_the_verified_rates(tmp_path):
    text = GOOD.replace('["turn-anchor"]', '["flip-rhyme", "turn-anchor"]').replace(
        'anchors = ["train", "mama"]', 'anchors = ["suburbs"]')
    report = lint(load(files=[write(tmp_path, text)]), totals=False)
    # "ride / pride" does not flip "chain / train", and "suburbs" is not in the comeback
    assert report.metrics["flip_rhyme_verified"] == 0.0
    assert report.metrics["turn_anchor_verified"] == 0.0


def test_anchor_matching_allows_inflection():
    assert anchor_in("train", "you missed all the trains")
    assert anchor_in("city", "in both of these cities")
    assert anchor_in("borrowed chain", "that chain was borrowed")
    assert not anchor_in("train", "you strain")
