"""`cypher bench lyrics`: the metric definitions on hand-made responses, and the command end to end."""
import json

from dsp.flow import Flow
from models_onnx.critic import Critic
from models_onnx.planner import plan
from plugin_host.bench_lyrics import TARGETS, score_responses

FLOW = Flow("boom-bap", "Xx-xX-x-Xx-xX-.-")
OPP = ("You came from the suburbs with a borrowed chain",
       "Your mama still drives you, you can't catch a train")


def test_metrics_on_hand_made_responses():
    corpus_bar = "I carry my city on my back every night"
    critic = Critic([corpus_bar])
    p = plan(OPP, 2, FLOW, seed=0)
    assert p.bars[0].rhyme_word == "train"
    good = ["Your mama drove the train and you rode in the rain",  # flips "train", hits anchors
            "You borrowed that chain and you still feel the strain"]
    copied = [corpus_bar, "the money keeps coming and the future is bright"]
    m = score_responses([good, copied], [p, p], [OPP, OPP], [("train",), ("train",)], critic, FLOW)
    # pairs per response: bar 0 vs "train", bar 1 vs "train", bar 1 vs bar 0.
    # good: 3 of 3; copied: only "bright / night" -> 4 of 6
    assert m["rhyme_accuracy"] == round(4 / 6, 4)
    assert m["grounding_rate"] == 0.5 and m["rhyme_flip_rate"] == 0.5
    assert m["novelty"] == 0.75  # only the copied corpus bar shares a 6-gram
    assert 0 < m["distinct_2"] <= 1 and 0 < m["distinct_1"] <= 1
    exact = sum(len(r) for r in (good, copied))
    assert 0 <= m["syllable_exactness"] * exact <= exact


def test_bench_lyrics_json(cli):
    r = cli("bench", "lyrics", "--exchanges", "4", "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["exchanges"] == 4
    assert {"retrieval", "human"} <= set(report["rows"])
    assert set(TARGETS) <= set(report["metrics"])
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
    human = report["rows"]["human"]
    assert human["novelty"] == 1.0  # held-out comebacks were never trained on
    assert report["rows"]["retrieval"]["novelty"] == 0.0  # retrieval answers from the corpus


def test_bench_lyrics_bad_size(cli):
    r = cli("bench", "lyrics", "--exchanges", "0")
    assert r.returncode == 2 and "--exchanges must be at least 1" in r.stderr
