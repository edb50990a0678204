"""The writer on the shipped model: what it remembers from one answer to the next."""
from dataclasses import replace

import numpy as np
import pytest

from models_onnx import decode
from models_onnx.corpus import load
from models_onnx.critic import Critic
from models_onnx.lyric_model import LyricModel
from models_onnx.planner import plan
from models_onnx.writer import ModelWriter, WriterSettings
from plugin_host.rap import load_flow

OPP = ("They call me Marcus and I run Detroit", "You rap like a toaster with a broken joint")


@pytest.fixture(scope="module")
def parts():
    corpus = load()
    return LyricModel(), Critic(corpus.train().bars()), load_flow("boom-bap")


def _pairs(bars):
    words = [b.lower().split() for b in bars]
    return {p for w in words for p in zip(w, w[1:])}


def test_a_second_answer_to_the_same_verse_is_not_the_first_again(parts):
    model, critic, flow = parts
    p = plan(OPP, 2, flow, seed=3)
    alone = ModelWriter(model, critic, flow, replace(WriterSettings(), repeat_penalty=0.0))
    assert alone.write(p, OPP) == alone.write(p, OPP)  # same plan, same seed: the same bars
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), repeat_penalty=3.0))
    first, second = writer.write(p, OPP), writer.write(p, OPP)
    assert len(_pairs(first) & _pairs(second)) < len(_pairs(first)) / 2
    writer.forget()
    assert writer.write(p, OPP) == first  # a new night: nothing remembered


def test_the_memory_keeps_whole_words_and_its_length(parts):
    model, critic, flow = parts
    tok = model.tok
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), memory_bars=2))
    the, crowd, eos = tok["the"], tok["crowd"], tok["<eos>"]
    memory = writer._recent

    def after(word):
        ids, penalty = memory.get(word)
        return dict(zip(np.asarray(ids).tolist(), np.asarray(penalty).tolist()))

    writer._remember([crowd, the, eos])
    assert after(decode.START) == {crowd: 1.0} and after(crowd) == {the: 1.0}
    spelled = [tok["#z"], tok["#q"], tok["</w>"], the, crowd, eos]
    writer._remember(spelled)
    assert after(the) == {crowd: 1.0}  # letters are no phrase; after them, no pair
    assert after(decode.START) == {crowd: 1.0}
    writer._remember([crowd, eos])  # two bars kept: the first goes, its pairs with it
    assert after(crowd) == {} and after(the) == {crowd: 1.0} and after(decode.START) == {crowd: 1.0}
    writer._remember([crowd, eos])
    assert after(decode.START) == {crowd: 2.0}  # each earlier use adds its penalty


def test_the_memory_s_penalty_stops_growing_at_its_cap(parts):
    model, critic, flow = parts
    tok = model.tok
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), memory_bars=10, repeat_cap=3.0))
    for _ in range(5):
        writer._remember([tok["crowd"], tok["<eos>"]])
    ids, penalty = writer._recent.get(decode.START)
    assert np.asarray(ids).tolist() == [tok["crowd"]] and np.asarray(penalty).tolist() == [3.0]
