"""Checks for the exercises of notebook 04_loss: L_simple for a batch, and one KL term of the bound.

The model in the L_simple cases is ``oracle.GaussianOracle`` (cheap, and its answer depends on both x_t and t),
so a wrong x_t or a wrong t shows in the loss. The KL cases are the real terms of the bound: the posterior
q(x_{t-1} | x_t, x_0) against the model's step p(x_{t-1} | x_t) with sigma_t^2 = beta_t, at code t = 1, 10, T-1.
"""

from __future__ import annotations

import torch

from .. import forward, losses, oracle, sampling
from ._check import BROADCAST, HALF_RESHAPE, Case, Check, run_check, variant
from .ex02 import HIDDEN_LAYOUTS, LAYOUTS, forward_cases

# --- 04.1 L_simple for a batch (Ho et al. Eq. 14, Algorithm 1) ----------------------------------------------


class _Trainable(torch.nn.Module):
    """The Gaussian oracle times one trainable weight (= 1): the oracle's answers, and a loss that carries a
    gradient, as a network's does (a loss cut from its graph, by .item() or .detach(), then fails the check)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.weight = model, torch.nn.Parameter(torch.ones(()))

    def forward(self, x_t, t):
        return self.weight * self.model(x_t, t)


def _loss_cases(seed: int = 0, layouts=LAYOUTS) -> list[Case]:
    return [Case(c.label, dict(model=_Trainable(oracle.GaussianOracle(c.inputs["schedule"], 0.1, 0.3)),
                               schedule=c.inputs["schedule"], x0=c.inputs["x0"], t=c.inputs["t"],
                               noise=c.inputs["noise"])) for c in forward_cases(seed, layouts)]


@variant
def _l_simple(abar="alphas_cumprod", sqrt=True, target="noise", reduce="mean", shape="(B, 1, 1, 1)"):
    def l_simple(model, schedule, x0, t, noise):
        a = getattr(schedule, abar)[t]
        a = {"(B, 1, 1, 1)": a.view(-1, 1, 1, 1), "(B, 1)": a[:, None], "(B,)": a}[shape]
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * noise) if sqrt else (a * x0 + (1 - a) * noise)
        err = (model(x_t, t) - {"noise": noise, "x0": x0}[target]) ** 2
        return {"mean": err.mean(), "sum": err.sum(), "per_image": err.flatten(1).mean(1)}[reduce]
    return l_simple


L_SIMPLE = Check(
    "l_simple",
    cases=_loss_cases(),
    reference=lambda model, schedule, x0, t, noise: losses.p_losses(model, schedule, x0, t=t, noise=noise),
    mistakes=[
        ("alpha instead of alpha-bar in x_t: the noisy input is sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps "
         "(schedule.alphas_cumprod)", _l_simple(abar="alphas")),
        ("missing square roots in x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps", _l_simple(sqrt=False)),
        ("the wrong target: the network predicts the noise eps, so compare eps_pred with noise, not with x0",
         _l_simple(target="x0")),
        ("summed instead of averaged: L_simple here is the mean over pixels and images (.mean()), as p_losses",
         _l_simple(reduce="sum")),
        ("one loss per image: the batch's L_simple is one number, the mean over the images too",
         _l_simple(reduce="per_image")),
        (BROADCAST, _l_simple(shape="(B,)")),
        (HALF_RESHAPE, _l_simple(shape="(B, 1)")),
    ],
    hidden=lambda: _loss_cases(1, HIDDEN_LAYOUTS),
)


def check_l_simple(fn, strict=False, hidden=False) -> bool:
    """fn(model, schedule, x0, t, noise) -> L_simple, a scalar tensor that carries the gradient; t a (B,)
    LongTensor."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(L_SIMPLE, fn, strict, hidden)


# --- 04.2 one KL term of the bound (Ho et al. Eq. 5, between two Gaussians) ---------------------------------


def _kl_cases(seed: int = 0, steps=(1, 999, 10, 500, 1, 999)) -> list[Case]:
    cases = [Case("one pixel: N(0.3, 0.5) against N(-0.2, 0.8)", dict(
        mean1=torch.tensor(0.3), var1=torch.tensor(0.5), mean2=torch.tensor(-0.2), var2=torch.tensor(0.8)))]
    both = forward_cases(seed)
    for c, k in zip(both[:4] + both[4:6], steps):  # code t >= 1: beta-tilde_0 = 0 has no log
        schedule, x0 = c.inputs["schedule"], c.inputs["x0"]
        t = torch.full_like(c.inputs["t"], k)
        x_t = forward.q_sample(schedule, x0, t, c.inputs["noise"])
        mean1, var1, _ = forward.q_posterior_mean_variance(schedule, x0, x_t, t)
        out = sampling.p_mean_variance(oracle.GaussianOracle(schedule, 0.1, 0.3), schedule, x_t, t,
                                       clip_denoised=False, variance="beta")
        label = f"{c.label.split(',')[0]}, t = {k}, batch {x0.shape[0]}"
        cases.append(Case(label, dict(mean1=mean1, var1=var1, mean2=out["mean"], var2=out["variance"])))
    return cases


@variant
def _kl(half_log=True, constant=True, std_denominator=False, reverse=False, log_variances=False):
    def kl_term(mean1, var1, mean2, var2):
        if reverse:
            mean1, var1, mean2, var2 = mean2, var2, mean1, var1
        if log_variances:  # losses.normal_kl's formula, which takes log-variances, fed the variances themselves
            return 0.5 * (-1.0 + var2 - var1 + torch.exp(var1 - var2) + (mean1 - mean2) ** 2 * torch.exp(-var2))
        log_ratio = torch.log(var2 / var1) * (0.5 if half_log else 1.0)
        denominator = 2 * (var2.sqrt() if std_denominator else var2)
        return log_ratio + (var1 + (mean1 - mean2) ** 2) / denominator - (0.5 if constant else 0.0)
    return kl_term


KL_TERM = Check(
    "kl_term",
    cases=_kl_cases(),
    reference=lambda mean1, var1, mean2, var2: losses.normal_kl(mean1, torch.log(var1), mean2, torch.log(var2)),
    mistakes=[
        ("the KL the wrong way round: the bound's term is KL(q || p), the posterior (mean1, var1) first; "
         "KL is not symmetric", _kl(reverse=True)),
        ("log of the variances without the 1/2: log(sigma2 / sigma1) = 0.5 log(var2 / var1)", _kl(half_log=False)),
        ("a standard deviation where the variance is needed: divide by 2 var2 (sigma_2 squared)",
         _kl(std_denominator=True)),
        ("the constant -1/2 is missing: the KL of a Gaussian with itself must be 0", _kl(constant=False)),
        ("log-variances where variances are given: losses.normal_kl takes log(var) (its logvar1, logvar2), this "
         "exercise takes var1 and var2 themselves; use log(var2 / var1) and var1 / var2, or pass torch.log(var) "
         "to the formula you copied", _kl(log_variances=True)),
    ],
    hidden=lambda: _kl_cases(1, (2, 998, 50, 700, 3, 400)),
)


def check_kl_term(fn, strict=False, hidden=False) -> bool:
    """fn(mean1, var1, mean2, var2) -> KL(N(mean1, var1) || N(mean2, var2)) elementwise, in nats."""
    __tracebackhide__ = True  # IPython and pytest show the student's line, not this one
    return run_check(KL_TERM, fn, strict, hidden)

