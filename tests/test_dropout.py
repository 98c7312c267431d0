"""The CPU dropout of modules/dropout.py: dropout's distribution, its gradient, its seeding,
and the generator's attention using it in training."""
import pytest
import torch

from recbole_bbq.modules.dropout import Dropout, dropout, keep_mask, scaled_keep_mask
from recbole_bbq.modules.generator import MultiHeadAttention


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_every_element_is_kept_with_probability_one_minus_p(p):
    torch.manual_seed(0)
    n = 3_000_000
    keep = keep_mask((n,), p).float()
    # binomial sd of a rate over 750k draws is at most 6e-4; each residue mod 4 is one int16
    # lane of the random words, so a biased lane (e.g. a word's sign bit left at 0) would show
    for lane in range(4):
        assert abs(keep[lane::4].mean().item() - (1 - p)) < 3e-3
    # neighbours are independent: P(both kept) = (1 - p)^2
    assert abs((keep[:-1] * keep[1:]).mean().item() - (1 - p) ** 2) < 3e-3


def test_kept_elements_are_scaled_and_dropped_ones_are_zero():
    torch.manual_seed(1)
    x = torch.rand(4001, 7) + 0.5  # no zeros, odd size (not a multiple of 4)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    assert 0.7 < kept.float().mean().item() < 0.8
    assert torch.allclose(y[kept], x[kept] / 0.75)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_scaled_mask_drops_the_same_elements_in_the_input_type(dtype):
    torch.manual_seed(6)
    keep = keep_mask((5, 1001), 0.3)
    torch.manual_seed(6)
    scaled = scaled_keep_mask((5, 1001), 0.3, dtype)
    assert scaled.dtype == dtype and scaled.shape == (5, 1001)
    assert torch.equal(scaled != 0, keep)
    assert torch.equal(scaled[keep], torch.full_like(scaled[keep], 1 / 0.7))
    x = torch.rand(5, 1001, dtype=dtype) + 0.5
    assert dropout(x, 0.3).dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.999])
def test_scaled_mask_is_bitwise_the_converted_and_scaled_bool_mask(dtype, p):
    # the mask is built from integer bit patterns; it must equal the plain construction
    torch.manual_seed(11)
    plain = keep_mask((3, 4099), p).to(dtype).mul_(1.0 / (1.0 - p))
    torch.manual_seed(11)
    fast = scaled_keep_mask((3, 4099), p, dtype)
    assert fast.dtype == dtype and fast.shape == plain.shape
    assert torch.equal(fast, plain)
    assert (fast != 0).any() and (fast == 0).any()


def test_gradient_uses_the_forward_mask():
    torch.manual_seed(2)
    x = (torch.rand(300, 50) + 0.5).requires_grad_()
    y = dropout(x, 0.3, training=True)
    y.backward(torch.ones_like(y))
    assert torch.allclose(x.grad, (y != 0).float() / 0.7)


def test_eval_mode_and_p_zero_are_the_identity():
    x = torch.randn(10, 10)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.0, training=True) is x


def test_the_seed_fixes_the_mask():
    torch.manual_seed(3)
    a = keep_mask((1000,), 0.5)
    torch.manual_seed(3)
    b = keep_mask((1000,), 0.5)
    c = keep_mask((1000,), 0.5)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_training_attention_drops_weights_with_this_mask():
    """In training on the CPU the attention takes the explicit path with this dropout (the
    fused kernel would draw its own bernoulli_ mask): same seed, same output as by hand."""
    torch.manual_seed(4)
    attention = MultiHeadAttention(d_model=16, n_heads=2, d_head=8, dropout=0.2).train()
    x = torch.randn(3, 5, 16)
    key_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 5])
    torch.manual_seed(5)
    out = attention(x, x, key_mask=key_mask)
    torch.manual_seed(5)
    q = attention._split(attention.q_proj(x))
    k, v = attention.project_kv(x)
    weights = dropout(attention.attention_weights(q, k, key_mask=key_mask), 0.2)
    by_hand = attention.o_proj(torch.matmul(weights, v).transpose(1, 2).reshape(3, 5, 16))
    assert torch.allclose(out, by_hand, atol=1e-6)
    attention.eval()  # no dropout: the fused kernel again, deterministic
    assert torch.allclose(attention(x, x, key_mask=key_mask), attention(x, x, key_mask=key_mask))


def test_rates_next_to_one_fall_back_instead_of_overflowing_the_threshold():
    # p within 2^-17 of 1 would need a threshold of 32768, past int16: dropout hands it to
    # torch (with this seed everything is dropped), the mask functions refuse it
    torch.manual_seed(0)
    x = torch.rand(1000) + 0.5
    assert torch.equal(dropout(x, 1 - 2 ** -18, training=True), torch.zeros(1000))
    with pytest.raises(ValueError, match="dropout rate"):
        keep_mask((10,), 1 - 2 ** -18)
    assert keep_mask((10,), 1 - 2 ** -16).dtype == torch.bool  # the last rate the mask takes
