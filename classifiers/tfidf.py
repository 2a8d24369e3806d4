"""TF-IDF over hashed counts (hashing.py): inverse document frequencies learnt from a set of
texts, log-scaled term counts weighted by them, and rows scaled to unit length, so a dot
product of two rows is their cosine."""

import numpy as np
from scipy import sparse


def idf_weights(counts: sparse.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency of each column, as scikit-learn's TfidfTransformer."""
    documents = counts.shape[0]
    frequency = np.bincount(counts.indices, minlength=counts.shape[1])
    idf: np.ndarray = np.log((1 + documents) / (1 + frequency)).astype(np.float32) + 1
    return idf


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """log(1 + count) times each column's IDF, rows of unit length (a new matrix)."""
    weighted = counts.astype(np.float32)
    weighted.data = np.log1p(weighted.data) * idf[weighted.indices]
    return unit_rows(weighted)


def unit_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows scaled to length 1 (empty rows stay empty), in place on a CSR matrix."""
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    norms = np.sqrt(np.bincount(rows, weights=matrix.data**2, minlength=matrix.shape[0]))
    norms[norms == 0] = 1
    matrix.data = (matrix.data / norms[rows]).astype(matrix.dtype, copy=False)
    return matrix
