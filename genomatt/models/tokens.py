"""Models that embed single-base tokens, made to take one-hot DNA.

Character-level DNA language models (HyenaDNA, Caduceus and the like) look up an embedding row for each
base's token id. A one-hot column times the embedding's rows of A, C, G and T is that row, so replacing the
lookup by this product gives the same function of the sequence, with one-hot input the attribution
methods can explain.
"""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from genomatt.errors import ModelError
from genomatt.genome import ALPHABET


class OneHotEmbedding(nn.Module):
    """The rows of an embedding for A, C, G, T, applied to one-hot DNA.

    Takes ``(N, 4, L)`` one-hot input and returns ``(N, L, D)``, what the embedding returns for the
    ``(N, L)`` token ids of the same bases. An ``N`` base (a column of zeros) gets a zero vector, not
    the model's own token for N.
    """

    def __init__(self, rows: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("rows", rows.detach().clone())

    def forward(self, one_hot: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(one_hot.transpose(1, 2), self.rows.t())


def one_hot_embedding(embedding: nn.Embedding, token_ids: Sequence[int]) -> OneHotEmbedding:
    """The module to put in place of a token embedding so that a model takes one-hot DNA.

    Parameters
    ----------
    embedding
        The model's ``nn.Embedding`` of single-base tokens.
    token_ids
        The token ids of A, C, G and T in the model's vocabulary, in that order.

    Returns
    -------
    OneHotEmbedding
        Equal to ``embedding`` on every sequence of A, C, G and T, as a function of its one-hot
        ``(N, 4, L)`` encoding.

    Examples
    --------
    >>> model.embeddings = one_hot_embedding(model.embeddings, token_ids=[7, 8, 9, 10])  # doctest: +SKIP
    >>> model(one_hot)  # as model(token_ids) before  # doctest: +SKIP
    """
    if not isinstance(embedding, nn.Embedding):
        raise ModelError(f"one_hot_embedding: expected a torch.nn.Embedding, got {type(embedding).__name__}")
    if isinstance(token_ids, (str, bytes)) or not all(
            isinstance(token, (int, np.integer)) and not isinstance(token, (bool, np.bool_)) for token in token_ids):
        raise ModelError(f"one_hot_embedding: expected the integer token ids of {', '.join(ALPHABET)}, got "
                         f"{token_ids!r}")
    ids = [int(token) for token in token_ids]
    if len(ids) != len(ALPHABET):
        raise ModelError(f"one_hot_embedding: expected the token ids of {', '.join(ALPHABET)} ({len(ALPHABET)} "
                         f"ids), got {len(ids)}")
    vocabulary = embedding.num_embeddings
    outside = [token for token in ids if not 0 <= token < vocabulary]
    if outside:
        raise ModelError(f"one_hot_embedding: token ids {outside} are outside the embedding's vocabulary of "
                         f"{vocabulary} (0 to {vocabulary - 1})")
    if len(set(ids)) != len(ids):
        raise ModelError(f"one_hot_embedding: the token ids {ids} of {', '.join(ALPHABET)} repeat one")
    rows = embedding.weight[ids].detach()
    if embedding.max_norm is not None:
        # The lookup renormalises each row it reads to at most max_norm, as torch.embedding_renorm_ does.
        norms = rows.norm(p=embedding.norm_type, dim=1, keepdim=True)
        rows = torch.where(norms > embedding.max_norm, rows * (embedding.max_norm / (norms + 1e-7)), rows)
    return OneHotEmbedding(rows)
