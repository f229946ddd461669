"""Label propagation on a batch similarity graph, differentiable in the embeddings.

Everything is computed from log edge weights, so row and symmetric normalisations stay exact
when a tiny sigma would underflow every weight of a row: the transition matrix D^-1 W is a
row softmax of the log weights, and D^-1/2 W D^-1/2 subtracts half of each endpoint's
log-degree.
"""

import torch
import torch.nn.functional as F

from trainables.losses.pairs import squared_distances


def graph_log_weights(embeddings: torch.Tensor, sigma: float, k: int | None = None) -> torch.Tensor:
    """log W for W_ij = exp(-||z_i - z_j||^2 / (2 sigma^2)) on unit vectors, W_ii = 0 (-inf).

    With `k`, each node keeps its k largest weights and the graph is symmetrised by
    W = max(W, W^T); k >= B - 1 keeps the fully connected graph.
    """
    unit = F.normalize(embeddings, dim=1)
    log_w = -squared_distances(unit) / (2.0 * sigma**2)
    size = len(unit)
    eye = torch.eye(size, dtype=torch.bool, device=unit.device)
    log_w = log_w.masked_fill(eye, float("-inf"))
    if k is not None and k < size - 1:
        nearest = log_w.topk(k, dim=1).indices
        keep = torch.zeros_like(eye).scatter_(1, nearest, True)
        log_w = log_w.masked_fill(~(keep | keep.T), float("-inf"))
    return log_w


def row_transition(log_w: torch.Tensor) -> torch.Tensor:
    """T = D^-1 W, the random-walk transition matrix."""
    return torch.softmax(log_w, dim=1)


def log_symmetric(log_w: torch.Tensor) -> torch.Tensor:
    """log of S = D^-1/2 W D^-1/2 (Zhou et al., 2004)."""
    log_degree = torch.logsumexp(log_w, dim=1)
    return log_w - 0.5 * log_degree[:, None] - 0.5 * log_degree[None, :]


def reference_transition(log_w: torch.Tensor) -> torch.Tensor:
    """The G-Loss authors' transition: D^-1/2 W D^-1/2, column-normalised, then row-normalised."""
    log_s = log_symmetric(log_w)
    return torch.softmax(log_s - torch.logsumexp(log_s, dim=0, keepdim=True), dim=1)


def solver_regulariser(dtype: torch.dtype) -> float:
    """A diagonal shift that keeps (I - T_UU) invertible when hidden nodes form a closed group."""
    return torch.finfo(dtype).eps ** 0.5


def harmonic_mass(transition: torch.Tensor, one_hot: torch.Tensor, labeled: torch.Tensor) -> torch.Tensor:
    """Unnormalised class mass of the hidden nodes: ((1 + eps) I - T_UU)^-1 T_UL Y_L.

    Rows sum to the probability that a walk from the node reaches a labeled node (1 when the
    node is connected to one); the tiny eps zeroes nodes cut off from every labeled node.
    """
    hidden = ~labeled
    t_uu = transition[hidden][:, hidden]
    t_ul = transition[hidden][:, labeled]
    system = (
        torch.eye(len(t_uu), dtype=t_uu.dtype, device=t_uu.device) * (1.0 + solver_regulariser(t_uu.dtype))
        - t_uu
    )
    return torch.linalg.solve(system, t_ul @ one_hot[labeled])


def spreading_mass(
    operator: torch.Tensor, one_hot: torch.Tensor, labeled: torch.Tensor, alpha: float
) -> torch.Tensor:
    """Unnormalised class mass of the hidden nodes: rows U of (I - alpha S)^-1 Y0."""
    seeds = one_hot * labeled[:, None]
    system = torch.eye(len(operator), dtype=operator.dtype, device=operator.device) - alpha * operator
    return torch.linalg.solve(system, seeds)[~labeled]


def hidden_class_mass(
    log_w: torch.Tensor,
    one_hot: torch.Tensor,
    labeled: torch.Tensor,
    *,
    alpha: float | None = None,
    reference: bool = False,
) -> torch.Tensor:
    """Unnormalised class mass [U, C] of the hidden nodes by the chosen propagation."""
    if reference:
        return harmonic_mass(reference_transition(log_w), one_hot, labeled)
    if alpha is None:
        return harmonic_mass(row_transition(log_w), one_hot, labeled)
    return spreading_mass(log_symmetric(log_w).exp(), one_hot, labeled, alpha)


def reached(mass: torch.Tensor) -> torch.Tensor:
    """Hidden rows whose total mass is above the solver's noise: some labeled node reaches them."""
    return mass.sum(dim=1) > solver_regulariser(mass.dtype)


def label_propagation(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    labeled_mask: torch.Tensor,
    num_classes: int,
    *,
    sigma: float,
    k: int | None = None,
    alpha: float | None = None,
    solve_dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Class distributions [B, C] for every node: labeled rows one-hot, hidden rows propagated.

    `alpha=None` is the harmonic solution (Zhu and Ghahramani, 2002); a float in (0, 1) is
    label spreading (Zhou et al., 2004) with that propagation weight. Hidden rows that no
    labeled node reaches are all zero.
    """
    log_w = graph_log_weights(embeddings.to(solve_dtype), sigma, k)
    one_hot = F.one_hot(labels, num_classes).to(solve_dtype)
    mass = hidden_class_mass(log_w, one_hot, labeled_mask, alpha=alpha)
    total = mass.sum(dim=1, keepdim=True).clamp_min(torch.finfo(solve_dtype).tiny)
    distributions = one_hot.clone()
    distributions[~labeled_mask] = torch.where(reached(mass)[:, None], mass / total, 0.0)
    return distributions.to(embeddings.dtype)
