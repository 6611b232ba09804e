"""Data files shipped with the package (with their licences)."""

from importlib import resources
from pathlib import Path


def cui_reference_model_path() -> Path:
    """Path of the CuI reference NequIP model of Kang et al. (ALmoMD tutorial, MIT licence)."""
    return Path(str(resources.files(__package__).joinpath('cui_reference', 'deployed-model_0_0.pth')))
