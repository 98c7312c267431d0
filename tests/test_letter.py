"""LETTER: Sinkhorn balance, the collaborative and diversity losses, and both stages end to end."""
import json

import pytest
import torch

from conftest import TINY_LETTER, make_synthetic_dataset, tiny_config
from recbole_bbq import compat
from recbole_bbq.config import Config
from recbole_bbq.fileio import file_sha256
from recbole_bbq.modules.letter_tokenizer import (
    LetterTokenizer,
    collaborative_loss,
    diversity_loss,
    sinkhorn_codes,
)
from recbole_bbq.modules.semantic_ids import collision_stats
from recbole_bbq.cli import main
from recbole_bbq.model.letter import LETTER
from recbole_bbq.model.tiger import TIGER
from recbole_bbq.quick_start import run_recbole_bbq

METRICS = {"recall@5", "recall@10", "ndcg@5", "ndcg@10"}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_synthetic_dataset(tmp_path / "data")
    return tmp_path


def letter_config(workdir, **overrides):
    return tiny_config(workdir, workdir / "data", **{**TINY_LETTER, **overrides})


# ---------------------------------------------------------------- Sinkhorn
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sinkhorn_assignment_is_balanced_where_nearest_codes_are_not(seed):
    gen = torch.Generator().manual_seed(seed)
    n, k = 512, 16
    codebook = torch.randn(k, 4, generator=gen)
    # points crowd around two codes: nearest-code assignment is badly skewed
    points = codebook[torch.randint(2, (n,), generator=gen)] + 0.3 * torch.randn(n, 4, generator=gen)
    distances = torch.cdist(points, codebook).pow(2)
    nearest = torch.bincount(distances.argmin(1), minlength=k)
    assert nearest.max() > 4 * n / k
    # the release's 50 rounds are not fully converged; more rounds balance tightly
    for n_iters, tolerance in ((50, 0.6), (200, 0.15)):
        balanced = torch.bincount(sinkhorn_codes(distances, 0.003, n_iters), minlength=k)
        assert balanced.sum() == n
        assert (balanced - n / k).abs().max() <= tolerance * n / k


def test_sinkhorn_is_finite_at_letters_small_epsilon_on_large_distances():
    distances = torch.rand(64, 8) * 1e4
    codes = sinkhorn_codes(distances, 0.003, 50)
    assert codes.min() >= 0 and codes.max() < 8
    assert torch.bincount(codes, minlength=8).min() > 0


# ---------------------------------------------------------------- collaborative loss
def test_collaborative_loss_decreases_and_aligns_the_known_pairs():
    torch.manual_seed(0)
    n, d = 48, 8
    cf = torch.randn(n, d)
    x = cf @ torch.randn(d, 24) + 0.1 * torch.randn(n, 24)  # content determines the pairing
    tok = LetterTokenizer(24, hidden_dims=[32], latent_dim=d, n_levels=3, codebook_size=16,
                          sinkhorn_epsilons=[0, 0, 0], cf_weight=1.0, diversity_weight=0.0)
    tok.kmeans_init(x)

    def top1(quantized):
        return float(((quantized @ cf.t()).argmax(1) == torch.arange(n)).float().mean())

    with torch.no_grad():
        start = collaborative_loss(tok.quantizer(tok.encoder(x)).quantized, cf)
    optimizer = torch.optim.Adam(tok.parameters(), lr=3e-3)
    for _ in range(300):
        optimizer.zero_grad()
        out = tok(x, cf)
        out["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        quantized = tok.quantizer(tok.encoder(x)).quantized
    assert float(out["cf"].detach()) < 0.5 * float(start)
    assert top1(quantized) > 0.6  # chance: 1/48


def test_collaborative_loss_is_infonce_over_the_batch():
    q, cf = torch.randn(5, 3), torch.randn(5, 3)
    logits = q @ cf.t()
    expected = (torch.logsumexp(logits, 1) - logits.diagonal()).mean()
    assert torch.allclose(collaborative_loss(q, cf), expected, atol=1e-6)


# ---------------------------------------------------------------- diversity loss
def test_diversity_positive_is_another_code_of_the_same_cluster():
    codebook = torch.randn(6, 4, requires_grad=True)
    clusters = torch.tensor([0, 0, 0, 1, 1, 2])  # code 5 is alone in its cluster
    codes = torch.tensor([0, 3, 5])
    gen = torch.Generator().manual_seed(0)
    loss = diversity_loss(codebook, codes, clusters, gen)
    loss.backward()
    assert torch.isfinite(loss) and codebook.grad.abs().sum() > 0
    # item 2 (singleton cluster) is left out: the loss over items 0 and 1 is bounded by the
    # worst same-cluster positive of each
    with torch.no_grad():
        logits = codebook[codes[:2]] @ codebook.t()
        logits[0, 0] = logits[1, 3] = float("-inf")
        nll = torch.logsumexp(logits, 1, keepdim=True) - logits
        worst = (nll[0, [1, 2]].max() + nll[1, 4]) / 2
        best = (nll[0, [1, 2]].min() + nll[1, 4]) / 2
    assert best - 1e-5 <= loss <= worst + 1e-5


def test_diversity_loss_is_zero_when_no_item_has_a_positive():
    codebook = torch.randn(3, 2)
    assert diversity_loss(codebook, torch.tensor([0, 1]), torch.tensor([0, 1, 2])) == 0


# ---------------------------------------------------------------- read-out
def test_sinkhorn_read_out_separates_colliding_items():
    torch.manual_seed(0)
    x = torch.randn(40, 12)
    tok = LetterTokenizer(12, hidden_dims=[16], latent_dim=4, n_levels=2, codebook_size=8,
                          sinkhorn_epsilons=[0.0, 0.003])
    tok.kmeans_init(x)
    tok.eval()
    nearest = tok.encode(x).numpy()
    nearest[:10] = nearest[0]  # force a group of 10 colliding items
    codes, before, after = tok.resolve_collisions_with_sinkhorn(x, nearest)
    assert before["colliding_items"] >= 10
    assert after["colliding_items"] < before["colliding_items"]
    assert collision_stats(codes[:10])["max_group_size"] <= 2


def test_one_epsilon_per_level_is_required():
    with pytest.raises(ValueError, match="one epsilon per level"):
        LetterTokenizer(8, n_levels=3, sinkhorn_epsilons=[0.0, 0.003])


# ---------------------------------------------------------------- configuration and runs
def test_letter_defaults_follow_the_release_on_top_of_tiger(workdir):
    config = Config("LETTER", "synth", config_dict={"data_path": str(workdir / "data")})
    assert (config["n_levels"], config["codebook_size"], config["codebook_dim"]) == (4, 256, 32)
    assert config["sinkhorn_epsilons"] == [0.0, 0.0, 0.0, 0.003]
    # alpha: main.py's 0.1, not the script's 0.01, which stays inert on standardised features
    assert (config["cf_weight"], config["diversity_weight"]) == (0.1, 0.0001)
    assert config["rqvae_hidden_dims"] == [512, 256, 128] and config["d_model"] == 128


def test_letter_trains_both_stages_through_the_cli(workdir):
    argv = [f"--{k}={v if isinstance(v, str) else json.dumps(v)}"
            for k, v in letter_config(workdir).items()]
    result = main(["--model=LETTER", "--dataset=synth", *argv])
    for split in ("best_valid_result", "test_result"):
        assert set(result[split]) == METRICS
    ids = result["semantic_ids"]
    assert "collisions_before_sinkhorn" in ids
    assert ids["collisions_after"]["colliding_items"] == 0
    history = result["tokenizer_history"]
    assert all({"cf", "diversity", "recon", "rq"} <= set(r) for r in history)
    assert all("colliding_items_before_sinkhorn" in r for r in history)
    assert history[-1]["cf"] > 0


def test_letter_reuses_a_saved_sasrec_checkpoint(workdir, monkeypatch):
    sasrec = run_recbole_bbq("SASRec", "synth", config_dict=letter_config(
        workdir, hidden_size=8, inner_size=16, epochs=1))
    monkeypatch.setattr(LETTER, "_train_sasrec_embeddings",
                        lambda *a, **k: pytest.fail("LETTER trained a SASRec of its own"))
    seen = {}
    real_init = LETTER.tokenizer_init

    def capture(self, train_data):
        real_init(self, train_data)
        seen["cf"] = self.cf_embeddings.detach().cpu().clone()

    monkeypatch.setattr(LETTER, "tokenizer_init", capture)
    config = letter_config(workdir, letter_cf_checkpoint=sasrec["checkpoint"])
    result = run_recbole_bbq("LETTER", "synth", config_dict=config)
    assert set(result["test_result"]) == METRICS
    # L_CF pulls toward the checkpoint's own item embeddings, row for row
    saved = compat.load_checkpoint(sasrec["checkpoint"])["state_dict"]["item_embedding.weight"]
    assert torch.equal(seen["cf"], saved.float().cpu())
    assert result["letter_cf_checkpoint_sha256"] == file_sha256(sasrec["checkpoint"])


def test_letter_reuses_the_collaborative_embeddings_of_its_own_tokenizer(workdir):
    first = run_recbole_bbq("LETTER", "synth", config_dict=letter_config(workdir))
    saved = torch.load(first["tokenizer_checkpoint"], weights_only=True)["tokenizer"]
    config = letter_config(workdir, letter_cf_checkpoint=first["tokenizer_checkpoint"])
    from recbole.data import create_dataset, data_preparation
    from recbole_bbq.model import LETTER

    cfg = Config("LETTER", "synth", config_dict=config)
    train, _, _ = data_preparation(cfg, create_dataset(cfg))
    model = LETTER(cfg, train.dataset)
    model.tokenizer_init(train)  # loads, no SASRec training
    assert torch.equal(model.cf_embeddings.cpu(), saved["cf_embeddings"].cpu())


def test_a_sasrec_checkpoint_of_the_wrong_width_is_refused(workdir):
    sasrec = run_recbole_bbq("SASRec", "synth", config_dict=letter_config(
        workdir, hidden_size=16, inner_size=16, epochs=1))
    config = letter_config(workdir, letter_cf_checkpoint=sasrec["checkpoint"])
    with pytest.raises(ValueError, match=r"item_embedding is \(\d+, 16\).*letter_cf_dim"):
        run_recbole_bbq("LETTER", "synth", config_dict=config)


def test_cf_dim_must_match_the_codebook_dim(workdir):
    with pytest.raises(ValueError, match="letter_cf_dim=16"):
        run_recbole_bbq("LETTER", "synth", config_dict=letter_config(workdir, letter_cf_dim=16))


def test_sasrec_in_a_child_process_equals_the_in_process_one(workdir):
    """The isolated SASRec (default) hands back what training it in-process gives."""
    from recbole.data import create_dataset, data_preparation
    from recbole_bbq.model import LETTER

    tables = {}
    for isolated in (True, False):
        cfg = Config("LETTER", "synth", config_dict=letter_config(
            workdir, letter_cf_isolated=isolated, letter_cf_epochs=2,
            letter_cf_learning_rate=0.05))
        train, _, _ = data_preparation(cfg, create_dataset(cfg))
        model = LETTER(cfg, train.dataset).to(cfg["device"])
        tables[isolated] = model._train_sasrec_embeddings(train).cpu()
    assert tables[True].shape == (model.n_items, model.cf_dim)
    assert float(tables[True][1:].std()) > 0.03  # trained: SASRec initialises with std 0.02
    assert torch.allclose(tables[True], tables[False], atol=1e-4)


def test_letter_rq_level_reduction_reaches_its_tokenizer_and_is_checked(workdir):
    """LETTER averages the levels' losses by default (the release), TIGER sums them; the key
    overrides either."""
    for model, overrides, expected in ((LETTER, {}, "mean"), (TIGER, {}, "sum"),
                                       (LETTER, {"rq_level_reduction": "sum"}, "sum")):
        config = Config(model.__name__, "synth", config_dict={
            **TINY_LETTER, "data_path": str(workdir / "data"), **overrides})
        assert model.build_rqvae(16, config).level_reduction == expected
    with pytest.raises(ValueError, match="rq_level_reduction must be sum or mean"):
        Config("LETTER", "synth", config_dict={"data_path": str(workdir / "data"),
                                               "rq_level_reduction": "avg"})
