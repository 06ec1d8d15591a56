"""SMILES: tokens, the MOSES training data, and RDKit validity and objectives.

RDKit is the optional ``[chem]`` extra; it is imported lazily, and :func:`rdkit_available`
tells the model registry whether the molecules model can load. The training data are the MOSES
SMILES that ship inside the ``molsets`` wheel, fetched with pip only by the training command.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

from scales_viz.errors import InputValueError, ScalesVizError
from scales_viz.models.manifest import sha256_of

__all__ = [
    "CHEM_EXTRA_HINT",
    "MOSES_WHEEL",
    "SMILES_VOCAB",
    "MissingExtraError",
    "canonical_smiles",
    "fetch_moses_smiles",
    "is_valid_smiles",
    "molecule_svg",
    "penalized_logp",
    "qed",
    "rdkit_available",
    "tokenize_smiles",
]

#: Every token of the MOSES training SMILES (two-letter halogens as one token), then the pad.
SMILES_VOCAB: tuple[str, ...] = (
    *("c", "C", "(", ")", "1", "O", "2", "N", "n", "=", "3", "F", "-", "S", "s", "o"),
    *("Cl", "[", "H", "]", "#", "4", "Br", "5", "6"),
    " ",
)
_TOKEN = re.compile(r"Cl|Br|.")
CHEM_EXTRA_HINT = "install the chem extra: pip install 'scales-viz[chem]' (it adds RDKit)"
MOSES_WHEEL = "molsets-0.3.1-py3-none-any.whl"
MOSES_WHEEL_SHA256 = "7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34"
MOSES_TRAIN_MEMBER = "moses/dataset/data/train.csv.gz"
#: Ring sizes above this are penalised in penalised logP.
RING_SIZE_LIMIT = 6


class MissingExtraError(ScalesVizError, ImportError):
    """An optional dependency (an extra) is not installed."""


def tokenize_smiles(smiles: str) -> list[str]:
    """Character tokens, with ``Cl`` and ``Br`` as single tokens."""
    return _TOKEN.findall(smiles)


def rdkit_available() -> bool:
    """Whether RDKit can be imported."""
    return importlib.util.find_spec("rdkit") is not None


def _chem() -> Any:
    try:
        from rdkit import Chem, RDLogger
    except ImportError as exc:  # pragma: no cover - CI installs the extra
        raise MissingExtraError(f"RDKit is not installed; {CHEM_EXTRA_HINT}.") from exc
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # invalid decodings are expected; do not flood stderr
    return Chem


def _molecule(smiles: object) -> Any | None:
    """The sanitised RDKit molecule of `smiles`, or None if it is not a valid molecule."""
    if not isinstance(smiles, str) or not smiles.strip():
        return None
    mol = _chem().MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


def canonical_smiles(smiles: object) -> str | None:
    """RDKit's canonical SMILES of `smiles` (None if it is not a valid molecule): two strings
    name the same molecule when their canonical forms are equal."""
    mol = _molecule(smiles)
    return None if mol is None else str(_chem().MolToSmiles(mol))


def is_valid_smiles(smiles: object) -> bool:
    """Whether `smiles` parses and sanitises (RDKit) to a non-empty molecule."""
    return _molecule(smiles) is not None


@functools.cache
def _sascorer() -> ModuleType:
    """RDKit's Contrib SA-score module (Ertl and Schuffenhauer 2009), loaded from its file."""
    from rdkit import RDConfig

    path = Path(RDConfig.RDContribDir) / "SA_Score" / "sascorer.py"
    spec = importlib.util.spec_from_file_location("scales_viz_sascorer", path)
    if spec is None or spec.loader is None:  # pragma: no cover - broken RDKit install
        raise MissingExtraError(f"RDKit's SA_Score module is missing at {path}; {CHEM_EXTRA_HINT}.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def penalized_logp(smiles: object) -> float:
    """Crippen logP - SA score - max(largest ring size - 6, 0); NaN for an invalid SMILES.

    The unnormalised form the ScaLES paper states (no dataset z-scoring of the three terms).
    """
    mol = _molecule(smiles)
    if mol is None:
        return float("nan")
    from rdkit.Chem import Crippen

    rings = mol.GetRingInfo().AtomRings()
    largest = max((len(ring) for ring in rings), default=0)
    cycle_penalty = max(largest - RING_SIZE_LIMIT, 0)
    logp = Crippen.MolLogP(mol)  # type: ignore[attr-defined]
    return float(logp - _sascorer().calculateScore(mol) - cycle_penalty)


def qed(smiles: object) -> float:
    """RDKit's QED (Bickerton et al. 2012) in [0, 1]; NaN for an invalid SMILES."""
    mol = _molecule(smiles)
    if mol is None:
        return float("nan")
    from rdkit.Chem import QED

    return float(QED.qed(mol))


def molecule_svg(smiles: object, size: int = 220) -> str | None:
    """An SVG drawing of `smiles` (RDKit), or None if it is not a valid molecule."""
    mol = _molecule(smiles)
    if mol is None:
        return None
    from rdkit.Chem.Draw import rdMolDraw2D

    drawer = rdMolDraw2D.MolDraw2DSVG(size, size)
    drawer.DrawMolecule(mol)
    drawer.FinishDrawing()
    return str(drawer.GetDrawingText())


def fetch_moses_smiles(cache_dir: Path) -> list[str]:
    """The MOSES training SMILES (1,584,663), from the ``molsets`` wheel in `cache_dir`.

    Downloads the wheel with ``pip download molsets==0.3.1 --no-deps`` when it is not there,
    checks its SHA-256, and reads ``moses/dataset/data/train.csv.gz`` from it. Only the
    training command calls this; loading a model never does.

    Raises:
        ScalesVizError: pip failed, or the wheel's checksum is not the expected one.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheel = cache_dir / MOSES_WHEEL
    if not wheel.is_file():
        command = [sys.executable, "-m", "pip", "download", "molsets==0.3.1", "--no-deps"]
        done = subprocess.run([*command, "-d", str(cache_dir)], capture_output=True, text=True)
        if done.returncode != 0 or not wheel.is_file():
            raise ScalesVizError(f"`pip download molsets==0.3.1` failed:\n{done.stderr[-2000:]}")
    if sha256_of(wheel) != MOSES_WHEEL_SHA256:
        raise ScalesVizError(
            f"{wheel} has SHA-256 {sha256_of(wheel)}; expected {MOSES_WHEEL_SHA256}. "
            "Delete it to download it again."
        )
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read(MOSES_TRAIN_MEMBER)).decode("ascii")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "SMILES":
        raise InputValueError(f"{MOSES_TRAIN_MEMBER}: expected a SMILES header; got {lines[:1]}")
    return [line.split(",")[0] for line in lines[1:] if line]
