"""The writer on the shipped model: what it remembers from one answer to the next."""
from dataclasses import replace

import numpy as np
import pytest

from models_onnx import decode
from models_onnx.corpus import load
from models_onnx.critic import Critic
from models_onnx.lyric_model import LyricModel
from models_onnx.planner import plan
from models_onnx.writer import ModelWriter, WordMemory, WriterSettings, word_shares
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
    alone = ModelWriter(model, critic, flow, replace(WriterSettings(), repeat_penalty=0.0, word_penalty=0.0))
    assert alone.write(p, OPP) == alone.write(p, OPP)  # same plan, same seed: the same bars
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), repeat_penalty=3.0))
    first, second = writer.write(p, OPP), writer.write(p, OPP)
    assert len(_pairs(first) & _pairs(second)) < len(_pairs(first)) / 2
    writer.forget()
    assert writer.write(p, OPP) == first  # a new night: nothing remembered


def test_the_memory_keeps_whole_words_and_its_length(parts):
    model, critic, flow = parts
    tok = model.tok
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), memory_bars=2, repeat_penalty=1.0))
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
    writer = ModelWriter(model, critic, flow, replace(WriterSettings(), memory_bars=10, repeat_penalty=1.0,
                                                                repeat_cap=3.0))
    for _ in range(5):
        writer._remember([tok["crowd"], tok["<eos>"]])
    ids, penalty = writer._recent.get(decode.START)
    assert np.asarray(ids).tolist() == [tok["crowd"]] and np.asarray(penalty).tolist() == [3.0]


def test_words_used_beyond_people_s_rate_wear_out_and_glue_does_not(parts):
    model, critic, flow = parts
    tok = model.tok
    share = word_shares(tok, critic.word_counts)
    the, crowd = tok["the"], tok["crowd"]
    assert share[the] > 0.05 and 0 < share[crowd] < 0.005 and share[tok["#z"]] == 0  # letters are not words
    memory = WordMemory(bars=100, share=share, weight=2.0)
    assert not memory  # nothing written yet: no penalty to compute
    others = [t for t in range(len(tok)) if tok.is_word(t) and t not in (the, crowd)]
    for i in range(20):  # each bar: "the", "crowd" and ten words written once (240 words)
        memory.add(np.array([the, crowd, *others[10 * i: 10 * i + 10]]))
    pen = memory.penalty()
    assert pen[crowd] == pytest.approx(2.0 * np.log(21 / (share[crowd] * 240 + 1)), rel=1e-5)
    assert pen[the] == 0  # 20 in 240 words: under people's rate for "the"
    unused = np.ones(len(share), bool)
    unused[[the, crowd, *others[:200]]] = False
    assert not pen[unused].any()  # words not written: nothing off
    memory.clear()
    assert not memory and not memory.penalty().any()


def test_a_word_memory_keeps_only_its_last_bars(parts):
    model, critic, _ = parts
    memory = WordMemory(bars=2, share=word_shares(model.tok, critic.word_counts), weight=1.0)
    crowd, floor = model.tok["crowd"], model.tok["floor"]
    memory.add(np.array([crowd]))
    memory.add(np.array([floor]))
    memory.add(np.array([floor]))  # the first bar goes, "crowd" with it
    pen = memory.penalty()
    assert pen[crowd] == 0 and pen[floor] > 0


def test_the_writer_s_words_wear_out_over_a_night(parts):
    model, critic, flow = parts
    p = plan(OPP, 2, flow, seed=3)
    plain = ModelWriter(model, critic, flow, replace(WriterSettings(), word_penalty=0.0))
    worn = ModelWriter(model, critic, flow)
    night_plain = [w for _ in range(12) for b in plain.write(p, OPP) for w in b.lower().split()]
    night_worn = [w for _ in range(12) for b in worn.write(p, OPP) for w in b.lower().split()]
    # twelve answers to one verse: more different words when overused ones wear out
    assert len(set(night_worn)) > len(set(night_plain))
