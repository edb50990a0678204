import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the train extra; the test extra pulls it in

from models_onnx.training.model import GPT, GPTConfig  # noqa: E402
from models_onnx.training.objectives import decode, inputs_and_targets, loss  # noqa: E402
from models_onnx.training.pathstar import (  # noqa: E402
    TEST_SEED_OFFSET, RunConfig, batch_order, evaluate, train, training_seed)
from models_onnx.training.pathstar_task import PathStar  # noqa: E402

TASK = PathStar(deg=2, path_len=4, nodes=20)


def _edges(row: np.ndarray, task: PathStar) -> set[tuple[int, int]]:
    e = row[: 3 * task.n_edges].reshape(task.n_edges, 3)
    assert np.all(e[:, 2] == task.token("|"))
    return {(int(u), int(v)) for u, v in e[:, :2]}


def test_graphs_are_path_stars_and_deterministic():
    seqs = TASK.sample(50, seed=3)
    np.testing.assert_array_equal(seqs, TASK.sample(50, seed=3))
    assert not np.array_equal(seqs, TASK.sample(50, seed=4))
    assert seqs.shape == (50, TASK.seq_len)
    for row in seqs:
        edges = _edges(row, TASK)
        query, source, goal, eq = row[3 * TASK.n_edges : TASK.answer_start]
        assert (query, eq) == (TASK.token("/"), TASK.token("="))
        path = row[TASK.answer_start :]
        assert path[0] == source and path[-1] == goal and len(set(path)) == TASK.path_len
        assert all((int(a), int(b)) in edges for a, b in zip(path, path[1:]))
        assert sum(1 for u, _ in edges if u == source) == TASK.deg  # d arms leave the source
        assert len({x for e in edges for x in e}) == 1 + TASK.deg * (TASK.path_len - 1)


def test_reference_spelling_with_commas():
    """`u , v | ... / s , g = s , a , ... , g`: same graphs as the compact spelling, commas between."""
    task = PathStar(deg=2, path_len=4, nodes=20, commas=True)
    compact, spelled = TASK.sample(20, seed=7), task.sample(20, seed=7)
    comma, k = task.token(","), task.edge_len
    assert spelled.shape == (20, task.seq_len) and task.answer_len == 7
    E = task.n_edges
    np.testing.assert_array_equal(spelled[:, 0 : k * E : k], compact[:, 0 : 3 * E : 3])  # u
    np.testing.assert_array_equal(spelled[:, 2 : k * E : k], compact[:, 1 : 3 * E : 3])  # v
    assert np.all(spelled[:, 1 : k * E : k] == comma)
    answers = spelled[:, task.answer_start :]
    np.testing.assert_array_equal(task.path_nodes(answers), compact[:, TASK.answer_start :])
    assert np.all(answers[:, 1::2] == comma)
    # the first decision is the node after the source, in either order
    assert task.first_decision_index(False) == 2 and task.first_decision_index(True) == 4
    rev = task.sample(20, seed=7, reverse=True)[:, task.answer_start :]
    np.testing.assert_array_equal(rev[:, 4], answers[:, 2])


def test_reverse_answers_run_goal_to_source():
    fwd, rev = TASK.sample(10, seed=1), TASK.sample(10, seed=1, reverse=True)
    np.testing.assert_array_equal(fwd[:, : TASK.answer_start], rev[:, : TASK.answer_start])
    np.testing.assert_array_equal(fwd[:, TASK.answer_start :], rev[:, TASK.answer_start :][:, ::-1])


def test_bad_graph_sizes_are_refused():
    with pytest.raises(ValueError, match="--nodes must be at least 9"):
        PathStar(deg=2, path_len=5, nodes=8)


@pytest.mark.parametrize("commas", [False, True])
@pytest.mark.parametrize("objective", ["next", "teacherless", "reverse"])
def test_inputs_targets_and_masks(objective, commas):
    TASK = PathStar(deg=2, path_len=4, nodes=20, commas=commas)
    seq = torch.from_numpy(TASK.sample(8, seed=0))
    dummy = TASK.token("$")
    x, y, mask = inputs_and_targets(seq, TASK.answer_start, objective, dummy)
    L = TASK.seq_len
    assert x.shape == y.shape == mask.shape == (8, L - 1)
    # the loss covers exactly the answer positions
    assert mask[0].nonzero().flatten().tolist() == list(range(TASK.answer_start - 1, L - 1))
    assert torch.equal(y[mask].view(8, -1), seq[:, TASK.answer_start :])
    # the prefix is never altered; answer inputs are dummies in teacherless mode only
    assert torch.equal(x[:, : TASK.answer_start], seq[:, : TASK.answer_start])
    answer_inputs = x[:, TASK.answer_start :]
    if objective == "teacherless":
        assert torch.all(answer_inputs == dummy)
    else:
        assert torch.equal(answer_inputs, seq[:, TASK.answer_start : L - 1])
        assert not torch.any(x == dummy)


def test_loss_ignores_the_prefix():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TASK.vocab_size, block_size=TASK.seq_len, n_layer=1, n_head=2, n_embd=32))
    seq = torch.from_numpy(TASK.sample(4, seed=0))
    x, y, mask = inputs_and_targets(seq, TASK.answer_start, "next", TASK.token("$"))
    y2 = y.clone()
    y2[:, : TASK.answer_start - 1] = 0  # scramble prefix targets: the loss must not move
    assert torch.equal(loss(model(x), y, mask), loss(model(x), y2, mask))


@pytest.mark.parametrize("objective", ["next", "teacherless"])
def test_decode_returns_whole_paths(objective):
    model = GPT(GPTConfig(vocab_size=TASK.vocab_size, block_size=TASK.seq_len, n_layer=1, n_head=2, n_embd=32))
    seq = torch.from_numpy(TASK.sample(5, seed=0))
    out = decode(model, seq[:, : TASK.answer_start], TASK.answer_len, objective, TASK.token("$"))
    assert out.shape == (5, TASK.answer_len)


def test_a_model_that_knows_the_answer_scores_one():
    """evaluate() compares full decoded paths: an oracle that emits the true answer gets 1.0."""
    seqs = torch.from_numpy(TASK.sample(20, seed=5))
    answers = {tuple(r[: TASK.answer_start].tolist()): r[TASK.answer_start :] for r in seqs}

    class Oracle(torch.nn.Module):
        def forward(self, idx):  # next-token: put all mass on the true next answer token
            B, T = idx.shape
            logits = torch.zeros(B, T, TASK.vocab_size)
            for b in range(B):
                ans = answers[tuple(idx[b, : TASK.answer_start].tolist())]
                k = T - TASK.answer_start  # answer tokens already given
                logits[b, -1, ans[k]] = 1.0
            return logits

    acc = evaluate(Oracle(), TASK, seqs, "next")
    assert acc == {"exact": 1.0, "first": 1.0, "nodes": [1.0] * TASK.path_len}


def test_tiny_run_end_to_end_and_resume(tmp_path):
    logs = []
    for objective in ("next", "teacherless", "reverse"):
        cfg = RunConfig.for_size("tiny", objective, epochs=2, n_train=512, n_test=64)
        record = train(cfg, tmp_path, device="cpu", log=logs.append)
        assert len(record["curve"]) == 2
        # a whole path right means its first step is right too
        assert all(0.0 <= p["exact"] <= p["first"] <= 1.0 for p in record["curve"])
        saved = json.loads((tmp_path / f"{objective}.json").read_text())
        assert saved["curve"] == record["curve"] and saved["run"]["objective"] == objective
    # the same run again picks up its checkpoint instead of starting over
    cfg = RunConfig.for_size("tiny", "next", epochs=2, n_train=512, n_test=64)
    again = train(cfg, tmp_path, device="cpu", log=logs.append)
    assert "resuming next from epoch 2" in logs and again["curve"] == record_next(tmp_path)
    # more epochs under a constant rate extend the run; under a cosine schedule they start over
    flat = RunConfig(**{**cfg.__dict__, "constant_lr": True, "warmup_steps": 0, "epochs": 1})
    train(flat, tmp_path / "flat", device="cpu", log=logs.append)
    longer = train(RunConfig(**{**flat.__dict__, "epochs": 2}), tmp_path / "flat", device="cpu", log=logs.append)
    assert "extending next from 1 to 2 epochs" in logs and len(longer["curve"]) == 2
    assert longer["run"]["epochs"] == 2
    # ... and may go on at a new rate (a step schedule by hand); each point keeps its rate
    lower = train(RunConfig(**{**flat.__dict__, "epochs": 3, "lr": flat.lr / 4}), tmp_path / "flat", device="cpu",
                  log=logs.append)
    assert f"next: learning rate {flat.lr:g} -> {flat.lr / 4:g} from epoch 3" in logs
    assert [p["lr"] for p in lower["curve"]] == [flat.lr, flat.lr, flat.lr / 4] and lower["run"]["lr"] == flat.lr / 4
    train(RunConfig(**{**cfg.__dict__, "epochs": 3}), tmp_path, device="cpu", log=logs.append)
    assert any("trained with other settings: starting over" in line for line in logs)
    # other settings in the same folder start a fresh run
    train(RunConfig(**{**cfg.__dict__, "lr": 2e-3, "epochs": 1}), tmp_path, device="cpu", log=logs.append)
    assert any("trained with other settings: starting over" in line for line in logs)


def record_next(folder):
    return json.loads((folder / "next.json").read_text())["curve"]


def test_cli_train_and_bench_tiny(cli, tmp_path):
    out = tmp_path / "ps"
    proc = cli("train", "pathstar", "--epochs", "1", "--n-train", "256", "--n-test", "32", "--out", str(out),
               timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} >= {"next.pt", "teacherless.pt", "reverse.pt", "curves.png", "nodes.png"}
    proc = cli("bench", "pathstar", "--from", str(out), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (out / "nodes.png").stat().st_size > 0 and report["setup"]["plot_nodes"] == str(out / "nodes.png")
    for o in ("next", "teacherless", "reverse"):
        assert 0.0 <= report["metrics"][f"{o}_exact"] <= 1.0
        assert o + "_exact" in report["targets"]


@pytest.mark.parametrize("args, message", [
    (["train", "pathstar", "--nodes", "5"], "--nodes must be at least 7"),
    (["train", "pathstar", "--width", "30", "--heads", "4"], "--width 30 must be a multiple of --heads 4"),
    (["train", "pathstar", "--epochs", "0"], "--epochs must be positive"),
    (["bench", "pathstar", "--from", "/nonexistent"], "holds no next.pt"),
])
def test_cli_train_bad_input(cli, tmp_path, args, message):
    proc = cli(*args, "--out", str(tmp_path / "o")) if args[0] == "train" else cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_fresh_draws_new_training_graphs_each_epoch_never_the_test_graphs():
    fixed = RunConfig.for_size("tiny", "teacherless")
    fresh = RunConfig.for_size("tiny", "teacherless", fresh=True)
    assert {training_seed(fixed, e) for e in range(5)} == {fixed.seed}
    seeds = [training_seed(fresh, e) for e in range(5)]
    assert len(set(seeds)) == 5 and fresh.seed + TEST_SEED_OFFSET not in seeds
    task = fresh.task
    a, b = task.sample(64, seeds[0]), task.sample(64, seeds[1])
    assert not (a == b).all(axis=1).any()  # no graph repeats between two epochs' first 64


def test_every_goal_asks_each_graph_once_per_arm_side_by_side():
    task = PathStar(3, 4, 30)
    plain = task.sample(20, seed=5)
    rows = task.sample(20, seed=5, every_goal=True)
    assert rows.shape == (60, task.seq_len)
    assert (rows[::3] == plain).all()  # the first of each graph's rows is the plain sample
    a = task.answer_start
    for g in range(20):
        group = rows[3 * g : 3 * g + 3]
        assert (group[:, : a - 2] == group[0, : a - 2]).all()  # same edges, same order, same source
        assert len(set(group[:, a - 2].tolist())) == 3  # three different goals
        assert (group[:, -1] == group[:, a - 2]).all()  # each path ends at its own goal


def test_every_goal_training_keeps_a_graph_s_rows_in_one_batch(tmp_path):
    order = batch_order(12, 3, "cpu")
    assert sorted(order.tolist()) == list(range(12))
    groups = order.view(-1, 3)
    assert (groups == groups[:, :1] + torch.arange(3)).all() and (groups[:, 0] % 3 == 0).all()
    cfg = RunConfig.for_size("tiny", "teacherless", epochs=1, n_train=256, n_test=32, batch=64, every_goal=True)
    record = train(cfg, tmp_path, device="cpu", log=lambda s: None)
    assert record["run"]["every_goal"] and len(record["curve"]) == 1


def test_the_cpu_size_is_the_recipe_that_shows_the_split_and_flags_turn_parts_off():
    from plugin_host.cli import build_parser
    from plugin_host.training import _overrides

    cpu = RunConfig.for_size("cpu", "teacherless")
    assert (cpu.deg, cpu.path_len, cpu.nodes, cpu.n_layer, cpu.n_embd) == (2, 3, 50, 3, 96)
    assert cpu.fresh and cpu.every_goal and cpu.constant_lr
    args = build_parser().parse_args(["train", "pathstar", "--size", "cpu", "--no-every-goal", "--commas"])
    plain = RunConfig.for_size("cpu", "teacherless", **_overrides(args))
    assert not plain.every_goal and plain.fresh and plain.commas  # only what was named changes
    args = build_parser().parse_args(["train", "pathstar", "--size", "cpu"])
    assert RunConfig.for_size("cpu", "teacherless", **_overrides(args)) == cpu


def test_pathstar_switches_are_refused_for_lyrics_even_when_off(cli):
    proc = cli("train", "lyrics", "--no-fresh", timeout=60)
    assert proc.returncode != 0 and "--fresh is a pathstar option" in proc.stderr
