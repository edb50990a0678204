"""The lyric model end to end on a tiny model trained here: data layout, objectives' masks,
ONNX parity through the cache, constrained and speculative decoding, the runtime's errors."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dsp import phonetics  # noqa: E402
from models_onnx import decode, rhyme  # noqa: E402
from models_onnx.corpus import load  # noqa: E402
from models_onnx.lyric_model import LyricModel, ModelError  # noqa: E402
from models_onnx.prompt import BarRequest, answer, bar_words, prefix  # noqa: E402
from models_onnx.tokenizer import Tokenizer  # noqa: E402
from models_onnx.training import export, lyrics  # noqa: E402

OPP = ("They call me Marcus and I run Detroit", "You rap like a toaster with a broken joint")


@pytest.fixture(scope="module")
def corpus():
    return load()


def _trained(tmp: Path, corpus, **kw) -> Path:
    run = lyrics.LyricsRun.for_size("tiny", steps=30, eval_every=30, **kw)
    lyrics.train(run, tmp, log=lambda s: None, corpus=corpus)
    model, tok, record = lyrics.load_checkpoint(tmp / "model.pt")
    return export.export(model, tok, record, tmp / "lyrics.onnx")


@pytest.fixture(scope="module")
def r2l_model(tmp_path_factory, corpus):
    return _trained(tmp_path_factory.mktemp("r2l"), corpus, objective="multi", direction="r2l")


@pytest.fixture(scope="module")
def l2r_model(tmp_path_factory, corpus):
    return _trained(tmp_path_factory.mktemp("l2r"), corpus, objective="next", direction="l2r")


def test_tokenizer_writes_any_word():
    tok = Tokenizer(["train", "you"])
    ids = tok.encode(["you", "zyxx", "train"])
    assert tok.words(ids) == ["you", "zyxx", "train"]
    assert ids[0] == tok.stoi["you"] and tok.is_letter(ids[1]) and ids[5] == tok.end_of_spelling
    assert Tokenizer.from_json(tok.to_json()).itos == tok.itos


def test_right_to_left_answers_start_with_the_rhyme_word():
    tok = Tokenizer(["you", "missed", "the", "train"])
    a = answer(tok, "You missed the train", "r2l")
    assert [tok.itos[t] for t in a] == ["train", "the", "missed", "you", "<eos>"]
    assert bar_words(tok, a, "r2l") == ["you", "missed", "the", "train"]
    assert bar_words(tok, answer(tok, "You missed the train", "l2r"), "l2r") == ["you", "missed", "the", "train"]


def test_prefix_fits_the_block_whatever_the_opponent_says():
    tok = Tokenizer(["you"])
    long = ("Supercalifragilistic " * 30,) * 3
    req = BarRequest(long, "Antidisestablishmentarian " * 10, 12, ("flip-rhyme", "turn-anchor"),
                     "extraordinarily", "Massachusetts")
    assert len(prefix(tok, req, "r2l")) <= lyrics.BLOCK_SIZE - 24


def test_objective_masks_and_targets():
    tok = Tokenizer(["a", "b", "c"])
    seqs = np.array([[1, 5, 6, 7, 8, 2, 0], [1, 5, 6, 7, 2, 0, 0]])  # prefix of 3, then answers
    enc = lyrics.Encoded(seqs, np.array([3, 3]), np.array([6, 5]))
    idx = np.array([0, 1])
    x, y, m = lyrics.batch_tensors(enc, idx, "next", 1, tok["<dummy>"], "cpu")
    # position t predicts seqs[t+1]; the answer (tokens at 3.. incl. <eos>) is predicted from t = 2..
    assert m[0, 0].tolist() == [False, False, True, True, True]  # inputs: the longest row less one
    assert m[0, 1].tolist() == [False, False, True, True, False]
    assert y[0, 0, 2:5].tolist() == [7, 8, 2]
    xt, _, mt = lyrics.batch_tensors(enc, idx, "teacherless", 1, tok["<dummy>"], "cpu")
    # teacherless: every input position that holds an answer token is the dummy, nothing else is
    assert xt[0].tolist() == [1, 5, 6, tok["<dummy>"], tok["<dummy>"]]
    assert xt[1, :3].tolist() == [1, 5, 6] and (xt[1, 3:] == tok["<dummy>"]).all()
    assert (mt == m).all()
    _, ym, mm = lyrics.batch_tensors(enc, idx, "multi", 3, tok["<dummy>"], "cpu")
    # head h at position t predicts seqs[t+1+h], counted only inside the answer
    assert ym[1, 0, 2].item() == 8 and ym[2, 0, 2].item() == 2
    assert mm[2, 0].tolist() == [False, False, True, False, False]
    assert mm[1, 0].tolist() == [False, False, True, True, False]


def test_onnx_matches_torch_through_the_cache(r2l_model):
    model, tok, _ = lyrics.load_checkpoint(r2l_model.parent / "model.pt")
    tokens = prefix(tok, BarRequest(OPP, None, 11, ("flip-rhyme",), "joint", "Marcus"), "r2l") + [40, 41, 42]
    assert export.parity(model, r2l_model, tokens, len(tokens) - 5) <= 1e-4


def test_cli_export_installs_8bit_weights_that_keep_the_float_model_s_choices(r2l_model, cli, tmp_path):
    out = tmp_path / "shipped.onnx"
    r = cli("export", "lyrics", "--from", str(r2l_model.parent), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "torch vs onnxruntime max |logit difference|" in r.stderr and "8-bit weights" in r.stderr
    assert not list(tmp_path.glob("*.part*"))  # the float export it checked against is gone
    import onnx

    g = onnx.load(str(out)).graph
    weights = {w.name for w in g.initializer}
    assert any(n.op_type == "MatMulNBits" for n in g.node)
    # every weight matrix is 8-bit (attention's products of activations stay float)
    assert not [n for n in g.node if n.op_type == "MatMul" and weights & set(n.input)]
    m = LyricModel(out, english=False)
    assert m.tok.itos == LyricModel(r2l_model, english=False).tok.itos  # the metadata came along
    model, tok, _ = lyrics.load_checkpoint(r2l_model.parent / "model.pt")
    tokens = prefix(tok, BarRequest(OPP, None, 11, ("flip-rhyme",), "joint", "Marcus"), "r2l")
    close = export.agreement(r2l_model, out, tokens)
    assert close["max_abs_diff"] < 0.5 and close["same_top"] >= 0.9
    fp32 = tmp_path / "float.onnx"
    assert cli("export", "lyrics", "--from", str(r2l_model.parent), "--out", str(fp32), "--fp32").returncode == 0
    assert export.agreement(r2l_model, fp32, tokens)["max_abs_diff"] <= 1e-5


def test_shipped_model_s_rows_do_not_depend_on_their_batch():
    # quantised weights, but each row quantised on its own: a candidate's logits are the
    # same alone or beside others (onnxruntime's dynamic int8 shared one scale per batch)
    m = LyricModel(english=False)
    rng = np.random.default_rng(3)
    ids = rng.integers(m.tok.first_word, len(m.tok), size=(3, 12))
    batch, keys, values = m.step(ids, *m.empty_cache(3))
    alone, keys1, values1 = m.step(ids[1:2], *m.empty_cache(1))
    np.testing.assert_array_equal(batch[1:2], alone)
    nxt = rng.integers(m.tok.first_word, len(m.tok), size=(3, 1))
    np.testing.assert_array_equal(m.step_bound(nxt, keys, values)[0][1:2], m.step_bound(nxt[1:2], keys1, values1)[0])


def test_draft_heads_run_only_when_asked_for(r2l_model):
    import onnxruntime as ort

    m = LyricModel(r2l_model, english=False)
    ids = np.array([[5, 6, 7, 8]], dtype=np.int64)
    plain = m.step(ids, *m.empty_cache(1))
    with_drafts = m.step(ids, *m.empty_cache(1), drafts=True)
    assert plain[0].shape[2] == 1 and with_drafts[0].shape[2] == m.n_future == 3
    np.testing.assert_array_equal(plain[0][:, :, 0], with_drafts[0][:, :, 0])
    # the graph itself skips the heads: nothing comes back for them when they are not asked for
    sess = ort.InferenceSession(str(r2l_model), providers=["CPUExecutionProvider"])
    k, v = m.empty_cache(1)
    feeds = {"input_ids": ids, "past_keys": k, "past_values": v}
    assert sess.run(["draft_logits"], {**feeds, "drafts": np.array(False)})[0].size == 0
    assert sess.run(["draft_logits"], {**feeds, "drafts": np.array(True)})[0].shape == (1, 4, 2, len(m.tok))


def _requests():
    return [(BarRequest(OPP, None, 11, ("flip-rhyme",), "joint", "Marcus"), ["marcus"]),
            (BarRequest(OPP, "Marcus cannot point", 9, (), "point", "toaster"), ["toaster"]),
            (BarRequest(OPP, None, 14, (), "Detroit", None), []),
            (BarRequest(OPP, None, 8, (), None, "Zylophant"), ["zylophant"])]  # a word no one trained on


@pytest.mark.parametrize("which", ["r2l_model", "l2r_model"])
def test_constrained_decoding_meets_every_constraint(which, request):
    m = LyricModel(request.getfixturevalue(which))
    rng = np.random.default_rng(0)
    for req, anchor in _requests():
        syll = sum(len(phonetics.word(w).syllables) for w in anchor)
        cons = decode.constraints(m, req.syllables, req.rhyme_word, anchor, syll)
        ids = prefix(m.tok, req, m.direction)
        states = [decode.greedy(m, ids, cons)[0]] + decode.sample(m, ids, cons, 4, 1.0, 40, rng)
        for st in states:
            words = bar_words(m.tok, st.tokens, m.direction)
            text = " ".join(words)
            assert phonetics.syllable_count(text) == req.syllables, text
            if req.rhyme_word:
                assert rhyme.grade(text, req.rhyme_word) != rhyme.NONE, text
            if anchor:
                assert " ".join(anchor) in text, text


@pytest.mark.parametrize("english", [0.0, 0.5])  # the model alone; beside general English
def test_speculative_decoding_gives_the_same_bar_in_fewer_calls(r2l_model, english):
    m = LyricModel(r2l_model)
    assert m.n_future == 3 and m.english is not None
    total_plain = total_spec = 0
    for req, anchor in _requests():
        syll = sum(len(phonetics.word(w).syllables) for w in anchor)
        cons = decode.constraints(m, req.syllables, req.rhyme_word, anchor, syll, english_weight=english)
        ids = prefix(m.tok, req, m.direction)
        plain, n_plain = decode.greedy(m, ids, cons)
        spec, n_spec = decode.greedy_speculative(m, ids, cons)
        assert spec.tokens == plain.tokens
        total_plain += n_plain
        total_spec += n_spec
    assert total_spec <= total_plain


def test_missing_and_corrupt_model_files_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(ModelError, match=r"missing\.onnx is missing; rebuild it with `cypher train lyrics`"):
        LyricModel(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match=r"bad\.onnx cannot be read .*cypher train lyrics"):
        LyricModel(bad)


def test_training_resumes_from_its_checkpoint(tmp_path, corpus):
    logs = []
    run = lyrics.LyricsRun.for_size("tiny", steps=10, eval_every=10)
    lyrics.train(run, tmp_path, log=logs.append, corpus=corpus)
    longer = lyrics.LyricsRun.for_size("tiny", steps=10, eval_every=10, seed=1)
    lyrics.train(longer, tmp_path, log=logs.append, corpus=corpus)
    assert any("other settings" in line for line in logs)  # another seed: not the same run
    rec = lyrics.train(longer, tmp_path, log=logs.append, corpus=corpus)
    assert logs[-1] == "resuming from step 10" and rec["curve"][-1]["step"] == 10


def test_shared_prefix_cache_changes_nothing_but_time(r2l_model):
    m = LyricModel(r2l_model)
    shared = decode.PrefixCache(m.tok["<prev>"])
    for req, anchor in _requests()[:2]:
        syll = sum(len(phonetics.word(w).syllables) for w in anchor)
        cons = decode.constraints(m, req.syllables, req.rhyme_word, anchor, syll)
        ids = prefix(m.tok, req, m.direction)
        plain = decode.sample(m, ids, cons, 3, 0.9, 40, np.random.default_rng(1), greedy_rows=1)
        cached = decode.sample(m, ids, cons, 3, 0.9, 40, np.random.default_rng(1), greedy_rows=1, shared=shared)
        assert [s.tokens for s in plain] == [s.tokens for s in cached]
    assert shared.keys is not None  # the opponent's words were cached and reused
