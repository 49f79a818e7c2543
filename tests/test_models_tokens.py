"""Models that embed single-base tokens, explained through their one-hot twin."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from genomatt.attribution import deep_lift_shap
from genomatt.errors import ModelError
from genomatt.models.io import load
from genomatt.models.tokens import one_hot_embedding
from genomatt.shuffle import dinucleotide_shuffle

TOKEN_IDS = [7, 8, 9, 10]  # A, C, G, T in a character vocabulary with special tokens first
LENGTH = 60


class TokenModel(nn.Module):
    """A character-level model: embedding, convolution, attention-like gate, pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(12, 8)
        self.conv = nn.Conv1d(8, 6, 5, padding=2)
        self.gate = nn.Conv1d(8, 6, 5, padding=2)
        self.head = nn.Linear(6, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embeddings(tokens).transpose(1, 2)
        h = nn.functional.gelu(self.conv(h)) * torch.sigmoid(self.gate(h))
        return self.head(h.mean(dim=-1))


def _one_hot(n: int, seed: int) -> torch.Tensor:
    bases = torch.randint(0, 4, (n, LENGTH), generator=torch.Generator().manual_seed(seed))
    return nn.functional.one_hot(bases, 4).permute(0, 2, 1).double()


def _tokens(one_hot: torch.Tensor) -> torch.Tensor:
    return torch.tensor(TOKEN_IDS)[one_hot.argmax(dim=1)]


def _one_hot_twin(model: TokenModel) -> TokenModel:
    twin = copy.deepcopy(model)
    twin.embeddings = one_hot_embedding(model.embeddings, TOKEN_IDS)
    return twin


def test_the_one_hot_twin_computes_the_token_model():
    torch.manual_seed(0)
    model = TokenModel().double().eval()
    X = _one_hot(5, seed=1)
    with torch.no_grad():
        assert torch.allclose(_one_hot_twin(model)(X), model(_tokens(X)), atol=1e-12)


def test_an_embedding_with_a_maximum_norm_is_renormalised_as_its_lookup_is():
    torch.manual_seed(0)
    model = TokenModel().double().eval()
    model.embeddings = nn.Embedding(12, 8, max_norm=1.0).double()
    with torch.no_grad():
        model.embeddings.weight.mul_(5)
    twin = _one_hot_twin(model)
    X = _one_hot(4, seed=2)
    with torch.no_grad():
        assert torch.allclose(twin(X), model(_tokens(X)), atol=1e-6)


def test_contributions_sum_to_the_token_model_run_on_token_ids():
    torch.manual_seed(0)
    model = TokenModel().double().eval()
    X = _one_hot(3, seed=1)
    references = torch.as_tensor(dinucleotide_shuffle(X.float(), n=4, random_state=2)).double()
    contributions = deep_lift_shap(_one_hot_twin(model), X, references=references, target=[0, 1], progress=False)

    with torch.no_grad():  # the user's own model, on the token ids of the sequences and of their references
        f_x = model(_tokens(X))
        f_ref = model(_tokens(references.reshape(-1, 4, LENGTH))).reshape(3, 4, 2)
    expected = f_x - f_ref.mean(dim=1)
    assert (f_x.unsqueeze(1) - f_ref).abs().mean() > 1e-3, "the references must move the output"
    assert torch.allclose(contributions.sum(dim=(2, 3)).double(), expected, atol=1e-6)


def test_a_token_model_is_refused_naming_its_embedding_and_the_way_out(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    with pytest.raises(ModelError, match=r"embeds integer tokens \(Embedding 'embeddings'\).*Models that take tokens"):
        load("test_models_tokens:TokenModel", input_length=LENGTH, device="cpu")


def test_a_model_taking_one_hot_input_to_tokens_by_argmax_is_pointed_at_the_one_hot_embedding():
    class ArgmaxTokens(TokenModel):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x.argmax(dim=1))

    torch.manual_seed(0)
    X = _one_hot(2, seed=1).float()
    with pytest.raises(ModelError, match=r"`argmax`.*one_hot_embedding in place of both .*Models that take tokens"):
        deep_lift_shap(ArgmaxTokens().eval(), X, references=X[:, None], progress=False)


def test_a_scripted_token_model_is_refused_alike(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tokens.ts"
    torch.jit.script(TokenModel()).save(str(path))
    with pytest.raises(ModelError, match=r"embeds integer tokens \(Embedding 'embeddings'\)"):
        load(path, input_length=LENGTH, device="cpu")


@pytest.mark.parametrize(
    "embedding, token_ids, message",
    [
        (nn.Linear(4, 8), TOKEN_IDS, "expected a torch.nn.Embedding, got Linear"),
        (nn.Embedding(12, 8), [7, 8, 9], r"token ids of A, C, G, T \(4 ids\), got 3"),
        (nn.Embedding(12, 8), [7, 8, 9, 12], r"\[12\] are outside the embedding's vocabulary of 12"),
        (nn.Embedding(12, 8), [7, 8, 8, 10], "repeat one"),
        (nn.Embedding(12, 8), "7890", "expected the integer token ids of A, C, G, T, got '7890'"),
        (nn.Embedding(12, 8), [7.9, 8, 9, 10], "expected the integer token ids"),
        (nn.Embedding(12, 8), [True, 8, 9, 10], "expected the integer token ids"),
    ],
)
def test_wrong_embeddings_and_token_ids_are_refused(embedding, token_ids, message):
    with pytest.raises(ModelError, match=message):
        one_hot_embedding(embedding, token_ids)
