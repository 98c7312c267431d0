import pytest
import torch

from recbole_bbq.modules.quantizer import ResidualQuantizer, kmeans
from recbole_bbq.modules.rqvae import RQVAE


def clustered(n=600, dim=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = 3 * torch.randn(12, dim, generator=gen)
    return centres[torch.randint(12, (n,), generator=gen)] + 0.5 * torch.randn(n, dim, generator=gen)


def test_kmeans_recovers_well_separated_clusters():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = centres.repeat_interleave(50, 0) + 0.1 * torch.randn(150, 2, generator=gen)
    found = kmeans(x, 3, generator=gen)
    # every true centre has a centroid close to it
    assert torch.cdist(centres, found).min(1).values.max() < 0.5


def test_kmeans_with_fewer_points_than_clusters_gives_distinct_codes():
    found = kmeans(torch.randn(3, 4), 8, generator=torch.Generator().manual_seed(0))
    assert found.shape == (8, 4)
    assert len(torch.unique(found, dim=0)) == 8


def test_reconstruction_improves_with_each_level():
    z = clustered()
    rq = ResidualQuantizer(n_levels=4, codebook_size=16, dim=8)
    rq.kmeans_init(z)
    errors = rq(z).residual_errors
    assert errors.shape == (4,)
    assert all(errors[i + 1] < errors[i] for i in range(3)), errors
    # the decoded codes are the quantized vector
    codes = rq.encode(z)
    assert torch.allclose(rq.decode(codes), rq(z).quantized, atol=1e-5)


def test_encode_picks_nearest_code_at_each_level():
    rq = ResidualQuantizer(n_levels=2, codebook_size=5, dim=3)
    z = torch.randn(20, 3)
    codes = rq.encode(z)
    first = torch.cdist(z, rq.codebooks[0]).argmin(1)
    assert torch.equal(codes[:, 0], first)
    residual = z - rq.codebooks[0][first]
    assert torch.equal(codes[:, 1], torch.cdist(residual, rq.codebooks[1]).argmin(1))


def test_straight_through_gradient_reaches_the_encoder():
    model = RQVAE(input_dim=8, hidden_dims=[16], latent_dim=4, n_levels=2, codebook_size=8)
    x = clustered(64)
    model.kmeans_init(x)
    out = model(x)
    out["recon"].backward()  # the reconstruction term alone: only the straight-through path
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # the codebook loss trains the codebooks
    model.zero_grad()
    model(x)["rq"].backward()
    assert model.quantizer.codebooks.grad.abs().sum() > 0


def test_rqvae_training_lowers_the_loss():
    torch.manual_seed(0)
    x = clustered(256)
    model = RQVAE(input_dim=8, hidden_dims=[32], latent_dim=4, n_levels=2, codebook_size=8)
    model.kmeans_init(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model(x)["loss"].item()
    for _ in range(150):
        optimizer.zero_grad()
        model(x)["loss"].backward()
        optimizer.step()
    assert model(x)["loss"].item() < 0.5 * first


def test_dead_codes_move_onto_batch_residuals():
    torch.manual_seed(0)
    rq = ResidualQuantizer(n_levels=1, codebook_size=8, dim=4, dead_code_reset=2)
    with torch.no_grad():
        rq.codebooks[0] = 100.0 + torch.arange(8.0)[:, None]  # all far away: code 0 wins
    z = torch.randn(64, 4)
    rq.train()
    rq(z)
    assert rq.codes_reset == 0  # not yet: resets happen every 2 calls
    rq(z)
    assert rq.codes_reset == 7  # every code but the one chosen moved
    moved = rq.codebooks[0, 1:]
    assert (torch.cdist(moved, z).min(1).values < 1e-2).all()  # onto inputs of the batch
    assert len(rq.encode(z)[:, 0].unique()) > 1


def test_no_reset_without_the_option_or_in_eval():
    rq = ResidualQuantizer(n_levels=1, codebook_size=8, dim=4)
    before = rq.codebooks.detach().clone()
    for _ in range(3):
        rq(torch.randn(16, 4))
    assert torch.equal(before, rq.codebooks.detach()) and rq.codes_reset == 0
    # with the option on, evaluation never moves a code (the same calls in training would:
    # the test above resets 7 codes after two)
    resetting = ResidualQuantizer(n_levels=1, codebook_size=8, dim=4, dead_code_reset=1).eval()
    before = resetting.codebooks.detach().clone()
    for _ in range(3):
        resetting(torch.randn(16, 4) + 100.0)
    assert torch.equal(before, resetting.codebooks.detach()) and resetting.codes_reset == 0


def test_rq_level_reduction_mean_divides_the_quantizer_loss_by_the_levels():
    """LETTER's release averages the levels' codebook + commitment losses, TIGER sums them;
    the reconstruction term is the same either way."""
    x = clustered(64)
    out = {}
    for reduction in ("sum", "mean"):
        torch.manual_seed(0)
        model = RQVAE(input_dim=8, hidden_dims=[32], latent_dim=4, n_levels=3, codebook_size=8,
                      level_reduction=reduction)
        model.kmeans_init(x)
        out[reduction] = model(x)
    torch.testing.assert_close(out["mean"]["rq"], out["sum"]["rq"] / 3)
    torch.testing.assert_close(out["mean"]["recon"], out["sum"]["recon"])
    torch.testing.assert_close(out["mean"]["loss"], out["mean"]["recon"] + out["mean"]["rq"])


def _spread_and_clustered(seed=0):
    """A widely spread block of 600 rows (like random ID latents) and a block of 600 rows on
    only 40 distinct, tightly packed points (like category latents)."""
    g = torch.Generator().manual_seed(seed)
    spread = 10 * torch.randn(600, 8, generator=g)
    centres = 0.5 * torch.randn(40, 8, generator=g)
    clustered = centres[torch.arange(600) % 40]
    return spread, clustered


def test_balanced_kmeans_gives_each_group_its_share_of_the_codes():
    spread, clustered = _spread_and_clustered()
    z = torch.cat([spread, clustered])
    used = {}
    for groups in (None, [600, 600]):
        q = ResidualQuantizer(n_levels=1, codebook_size=32, dim=8)
        q.kmeans_init(z, seed=0, groups=groups)
        used[groups is None] = len(torch.unique(q.encode(clustered)[:, 0]))
    # pooled: the spread block pulls nearly every centroid; balanced: 16 codes each
    assert used[True] < 8
    assert used[False] == 16


def test_kmeans_init_without_groups_is_one_kmeans_per_level_over_all_rows():
    spread, clustered = _spread_and_clustered()
    z = torch.cat([spread, clustered])
    # the initialisation as it was before groups existed, written out
    gen = torch.Generator().manual_seed(3)
    residual, expected = z.clone(), []
    for _ in range(2):
        centroids = kmeans(residual, 16, generator=gen)
        expected.append(centroids)
        residual = residual - centroids[torch.cdist(residual, centroids).argmin(1)]
    for groups in (None, [len(z)]):
        q = ResidualQuantizer(n_levels=2, codebook_size=16, dim=8)
        q.kmeans_init(z, seed=3, groups=groups)
        assert torch.equal(q.codebooks.data, torch.stack(expected))


def test_balanced_kmeans_gives_the_remainder_codes_to_the_first_groups():
    g = torch.Generator().manual_seed(1)
    blocks = [torch.randn(50, 4, generator=g) + 100 * k for k in range(3)]  # far apart
    q = ResidualQuantizer(n_levels=1, codebook_size=8, dim=4)
    q.kmeans_init(torch.cat(blocks), groups=[50, 50, 50])
    # 8 codes among 3 groups: 3, 3, 2, each group's codes in its own region
    nearest_block = torch.cdist(q.codebooks.data[0], torch.stack([b.mean(0) for b in blocks])).argmin(1)
    assert nearest_block.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_kmeans_init_refuses_bad_groups():
    q = ResidualQuantizer(n_levels=1, codebook_size=4, dim=2)
    with pytest.raises(ValueError, match="summing to the 10 rows"):
        q.kmeans_init(torch.randn(10, 2), groups=[4, 4])
    with pytest.raises(ValueError, match="5 groups cannot share 4 codes"):
        q.kmeans_init(torch.randn(10, 2), groups=[2] * 5)
    with pytest.raises(ValueError, match="at least one point"):
        q.kmeans_init(torch.randn(0, 2))
