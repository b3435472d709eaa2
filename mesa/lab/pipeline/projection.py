"""2-D maps of trigger space (PCA, t-SNE, UMAP) so MESA's clouds and the baseline's points can be
seen side by side. Triggers are compared as flattened pixel vectors."""
import importlib
import threading

import numpy as np
import torch

from mesa.errors import MesaError

METHODS = ("PCA", "t-SNE", "UMAP")


def project_triggers(triggers: torch.Tensor, method: str = "PCA", seed: int = 0) -> np.ndarray:
    """N x 3 x k x k triggers -> N x 2 coordinates. Fewer than 5 triggers always use PCA (the
    neighbour-based methods need more points)."""
    if method not in METHODS:
        raise MesaError(f"unknown projection {method!r}: use {', '.join(METHODS)}")
    x = triggers.flatten(1).double().numpy()
    if len(x) < 2:
        return np.zeros((len(x), 2))
    if method == "PCA" or len(x) < 5:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30, len(x) - 1), init="pca", random_state=seed).fit_transform(x)
    import umap

    return umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=seed).fit_transform(x)


def pca_projector(reference: torch.Tensor, seed: int = 0):
    """A PCA map fitted on `reference` triggers (at least 2) that places new triggers on it too:
    the probe puts one new trigger on the map of the run's triggers (t-SNE and UMAP cannot)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(reference.flatten(1).double().numpy())
    return lambda triggers: pca.transform(triggers.flatten(1).double().numpy())


def import_in_background() -> threading.Thread:
    """Import scikit-learn's PCA on a daemon thread: a server calls it at start, so the first map a page
    draws (a class opening Trigger space together) does not wait the 1-2 s that import takes."""
    thread = threading.Thread(target=importlib.import_module, args=("sklearn.decomposition",),
                              name="import scikit-learn", daemon=True)
    thread.start()
    return thread
