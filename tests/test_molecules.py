"""SMILES tokens and the RDKit validity rule and objectives."""

from __future__ import annotations

import math

import pytest

from scales_viz.models import molecules
from scales_viz.models.molecules import (
    SMILES_VOCAB,
    is_valid_smiles,
    molecule_svg,
    penalized_logp,
    qed,
    tokenize_smiles,
)

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
# Published QED of aspirin (Bickerton et al. 2012, RDKit's implementation): 0.55.
ASPIRIN_QED = 0.55
# Crippen logP of aspirin is 1.31 (RDKit; Wildman and Crippen 1999).
ASPIRIN_LOGP = 1.31


def test_halogens_are_single_tokens() -> None:
    assert tokenize_smiles("ClCCBr") == ["Cl", "C", "C", "Br"]
    assert tokenize_smiles("c1ccccc1Cl") == ["c", "1", "c", "c", "c", "c", "c", "1", "Cl"]
    assert tokenize_smiles("[nH]") == ["[", "n", "H", "]"]


def test_vocabulary_has_unique_tokens_and_a_space_pad() -> None:
    assert len(set(SMILES_VOCAB)) == len(SMILES_VOCAB)
    assert SMILES_VOCAB[-1] == " "
    assert {"Cl", "Br"} <= set(SMILES_VOCAB)


@pytest.mark.parametrize("smiles", [ASPIRIN, "C", "c1ccccc1", "CCO", "ClC(Cl)Cl"])
def test_valid_smiles(smiles: str) -> None:
    assert is_valid_smiles(smiles)


@pytest.mark.parametrize(
    "smiles", ["", "   ", "C1CC", "c1cccc1", "C(C", "X", "CC)(", "C=C=C=C=C(=O)(=O)=O", None, 7]
)
def test_invalid_smiles(smiles: object) -> None:
    assert not is_valid_smiles(smiles)
    assert math.isnan(qed(smiles))
    assert math.isnan(penalized_logp(smiles))


def test_known_drug_has_its_known_qed() -> None:
    assert round(qed(ASPIRIN), 2) == ASPIRIN_QED


def test_penalized_logp_is_logp_minus_sa_minus_ring_penalty() -> None:
    from rdkit import Chem
    from rdkit.Chem import Crippen

    sa = molecules._sascorer().calculateScore(Chem.MolFromSmiles(ASPIRIN))
    assert 1.0 < sa < 3.0  # aspirin is easy to make (SA runs from 1, easy, to 10)
    assert round(Crippen.MolLogP(Chem.MolFromSmiles(ASPIRIN)), 2) == ASPIRIN_LOGP
    assert penalized_logp(ASPIRIN) == pytest.approx(ASPIRIN_LOGP - sa, abs=5e-3)


def test_large_rings_are_penalised_by_their_excess_size() -> None:
    from rdkit import Chem
    from rdkit.Chem import Crippen

    ring8 = "C1CCCCCCC1"  # cyclooctane: penalty 8 - 6 = 2
    mol = Chem.MolFromSmiles(ring8)
    expected = Crippen.MolLogP(mol) - molecules._sascorer().calculateScore(mol) - 2
    assert penalized_logp(ring8) == pytest.approx(expected, rel=1e-12)


def test_missing_rdkit_reports_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(molecules.importlib.util, "find_spec", lambda name: None)
    assert not molecules.rdkit_available()


def test_valid_molecules_draw_as_svg_and_invalid_ones_do_not() -> None:
    svg = molecule_svg(ASPIRIN)
    assert svg is not None and svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert molecule_svg("C1CC") is None


def test_canonical_smiles_names_the_same_molecule_once() -> None:
    from scales_viz.models.molecules import canonical_smiles

    assert canonical_smiles("OCC") == canonical_smiles("CCO") is not None
    assert canonical_smiles("c1ccccc1") == canonical_smiles("C1=CC=CC=C1")
    assert canonical_smiles("C1CC") is None and canonical_smiles("") is None
