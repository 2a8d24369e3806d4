"""The re-ranker's dot products of paired rows (pair_model._rowwise): the same numbers whether
one query meets its candidates, from either side, or many texts meet many."""

from collections.abc import Callable

import numpy as np
import pytest
from scipy import sparse

from classifiers import pair_model


def _texts(rng: np.random.Generator, n: int) -> sparse.csr_matrix:
    return sparse.random(n, 5000, density=0.01, format="csr", dtype=np.float32, random_state=rng)


@pytest.mark.parametrize(
    ("shape", "rows"),
    [
        ("one query, its candidates after it", lambda n: (np.zeros(n - 1, int), np.arange(1, n))),
        ("one query, on the other side", lambda n: (np.arange(1, n), np.zeros(n - 1, int))),
        ("many queries", lambda n: (np.arange(n), np.arange(n)[::-1])),
    ],
)
def test_each_pair_gets_the_dot_product_of_its_two_rows(
    shape: str, rows: Callable[[int], tuple[np.ndarray, np.ndarray]]
) -> None:
    rng = np.random.default_rng(7)
    a, b = _texts(rng, 61), _texts(rng, 61)
    a_rows, b_rows = rows(61)
    expected = np.einsum("ij,ij->i", a.toarray()[a_rows], b.toarray()[b_rows])
    found = pair_model._rowwise(a, a_rows, b, b_rows)
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-7, err_msg=shape)


def test_pairs_beyond_the_gram_limit_are_multiplied_row_by_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(8)
    a, b = _texts(rng, 40), _texts(rng, 40)
    a_rows, b_rows = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    expected = np.einsum("ij,ij->i", a.toarray()[a_rows], b.toarray()[b_rows])
    monkeypatch.setattr(pair_model, "GRAM_CELLS", 10)
    np.testing.assert_allclose(pair_model._rowwise(a, a_rows, b, b_rows), expected, rtol=1e-5)
