"""CLUB mutual-information upper bound (BBQRec eq. 3): estimate quality and gradient routing."""
import torch

from recbole_bbq.modules.club import CLUB



def fitted_estimate(dependent: bool, seed: int = 0, dim: int = 4, n: int = 512, steps: int = 300):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=g)

    def sample():
        z = torch.randn(n, dim, generator=g)
        zbar = z @ mixing + 0.1 * torch.randn(n, dim, generator=g) if dependent else torch.randn(
            n, dim, generator=g
        )
        return z, zbar

    torch.manual_seed(seed)
    club = CLUB(dim, dim, hidden_dim=32)
    optimiser = torch.optim.Adam(club.parameters(), lr=1e-2)
    for _ in range(steps):
        z, zbar = sample()
        optimiser.zero_grad()
        club.learning_loss(z, zbar).backward()
        optimiser.step()
    with torch.no_grad():
        return float(club.mi_upper_bound(*sample()))


def test_estimate_is_clearly_higher_for_dependent_pairs():
    dependent, independent = fitted_estimate(True), fitted_estimate(False)
    assert abs(independent) < 0.3
    assert dependent > 2.0
    assert dependent > independent + 2.0


def test_mi_term_trains_only_the_encoders_and_fit_loss_only_q():
    torch.manual_seed(0)
    club = CLUB(3, 5, hidden_dim=8)
    z = torch.randn(16, 3, requires_grad=True)
    zbar = torch.randn(16, 5, requires_grad=True)
    club.mi_upper_bound(z, zbar).backward()
    assert all(p.grad is None for p in club.parameters())  # q is not trained by the bound
    assert z.grad is not None and z.grad.abs().sum() > 0  # ... but the encoders are
    assert zbar.grad is not None and zbar.grad.abs().sum() > 0

    z2 = torch.randn(16, 3, requires_grad=True)
    zbar2 = torch.randn(16, 5, requires_grad=True)
    club.learning_loss(z2, zbar2).backward()
    assert z2.grad is None and zbar2.grad is None  # fitting q never reaches the inputs
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in club.parameters())


def test_bound_matches_the_pairwise_definition():
    """The O(N D) negative term equals mean_i mean_j log q(zbar_j | z_i) - normaliser."""
    torch.manual_seed(1)
    club = CLUB(3, 4, hidden_dim=8)
    z, zbar = torch.randn(10, 3), torch.randn(10, 4)
    with torch.no_grad():
        mu, logvar = club.mu(z), club.logvar(z)
        log_q = -0.5 * (
            (zbar[None, :, :] - mu[:, None, :]) ** 2 / logvar.exp()[:, None, :]
            + logvar[:, None, :]
        ).sum(-1)  # [i, j] = log q(zbar_j | z_i) up to the constant
        expected = log_q.diagonal().mean() - log_q.mean()
        assert torch.allclose(club.mi_upper_bound(z, zbar), expected, atol=1e-5)
