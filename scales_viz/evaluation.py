"""The paper's valid-generation protocol, and the measured model card built from it.

Protocol (scales-math.md): 500 encoded data latents, 500 prior samples and 500 samples at 5x
the prior scale; each is labelled by whether its argmax (mean) decoding is valid; the AUROC of
each score for that label is reported. Scores: ScaLES (exact, float64), likelihood, prior and
distance to data (k=3 nearest reference latents, the evaluated data points excluded).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor

from scales_viz.models.base import VAEModel
from scales_viz.score import likelihood
from scales_viz.scoring import NEIGHBOURS, SCORE_LABELS, SCORE_NAMES, score_latents

__all__ = [
    "Evaluation",
    "card_record",
    "decoder_family",
    "evaluate_model",
    "family_rows",
    "model_card",
    "scales_caveat",
    "write_model_card",
]

GROUP_SIZE = 500
FAR_SCALE = 5.0
SCORES = SCORE_NAMES
GROUPS = ("data", "prior", "far")
EXAMPLES_PER_GROUP = 5

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Evaluation:
    """Results of the valid-generation protocol on one model.

    Attributes:
        model: model name.
        seed: seeds the sample draws and the choice of data latents.
        group_size: points per group.
        far_scale: the far group's std in units of the prior scale.
        validity: fraction valid per group.
        auroc: AUROC of each score for validity over all groups (NaN if one class only).
        seconds: seconds each score took on all points.
        means: mean of each finite score per group.
        non_finite: count of non-finite values of each score.
        examples: a few decodings per group, with validity.
        reconstruction: for sequence models, the shipped held-out reference decoded back from
            its encoder means (greedy): ``n``, ``exact`` (the same string), ``decoded_valid``
            and, for molecules, ``canonical`` (the same molecule: canonical SMILES equal).
        raw: per-point arrays for plots: ``group`` (names), ``valid`` (bools), and one float
            array per score (same order). Not written to ``evaluation.json``.
    """

    model: str
    seed: int
    group_size: int
    far_scale: float
    validity: dict[str, float]
    auroc: dict[str, float]
    seconds: dict[str, float]
    means: dict[str, dict[str, float]]
    non_finite: dict[str, int]
    examples: dict[str, list[tuple[str, bool]]]
    reconstruction: dict[str, float] = field(default_factory=dict)
    raw: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), without the per-point arrays."""
        record = asdict(self)
        record.pop("raw")
        return record


def _groups(model: VAEModel, n: int, seed: int) -> tuple[dict[str, Tensor], Tensor]:
    """The three latent groups, and the reference latents left for distance-to-data."""
    reference = model.data_latents
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(reference.shape[0], generator=gen)
    take = max(0, min(n, reference.shape[0] - NEIGHBOURS))  # keep NEIGHBOURS for distances
    data = reference[order[:take]]
    rest = reference[order[take:]]
    prior = torch.randn(n, model.latent_dim, generator=gen) * model.prior_scale
    far = torch.randn(n, model.latent_dim, generator=gen) * (FAR_SCALE * model.prior_scale)
    return {"data": data, "prior": prior, "far": far}, rest


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC with non-finite scores ranked lowest (a singular point is least realistic)."""
    if labels.all() or not labels.any():
        return float("nan")
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    lowest = np.nanmin(finite[np.isfinite(finite)]) - 1.0 if np.isfinite(finite).any() else 0.0
    return float(roc_auc_score(labels, np.where(np.isfinite(finite), finite, lowest)))


def _describe(model: VAEModel, objects: list[Any]) -> list[str]:
    """Short text for each object: the string itself, or for a digit image its best class."""
    if model.render != "image":
        return [str(obj) for obj in objects]
    classes = sorted(name for name in model.objectives if name.startswith("looks_like_"))
    if not classes or not objects:
        return [f"image {np.asarray(obj).shape}" for obj in objects]
    probs = np.stack([model.objectives[name].batch(objects) for name in classes], axis=1)
    best = probs.argmax(axis=1)
    return [
        f"looks like {classes[k].removeprefix('looks_like_')} (p={probs[i, k]:.2f})"
        for i, k in enumerate(best)
    ]


def evaluate_model(
    model: VAEModel,
    *,
    group_size: int = GROUP_SIZE,
    seed: int = 0,
    progress: Progress | None = None,
    reconstruction: bool = True,
) -> Evaluation:
    """Run the valid-generation protocol on `model` (CPU, float64 scores).

    Args:
        model: the model to evaluate.
        group_size: points per group (the paper uses 500).
        seed: seeds the samples and the choice of data latents.
        reconstruction: also measure :func:`reference_reconstruction` (for the card; the
            Model view, which shows the card's, leaves it out).
        progress: called with a stage name and the fraction done.

    Returns:
        The measured :class:`Evaluation`.
    """
    report = progress or (lambda stage, fraction: None)
    groups, rest = _groups(model, group_size, seed)
    z = torch.cat(list(groups.values())).double()
    names = np.repeat(list(groups), [len(g) for g in groups.values()])
    report("decoding", 0.0)
    objects = model.decode(z.float())
    valid = model.validity(objects)
    decoder = model.decoder_for(z)
    scorers: dict[str, Callable[[], Tensor]] = {
        "scales": lambda: score_latents(
            model, "scales", z, progress=lambda done, total: report("scales", done / total)
        ),
        "likelihood": lambda: likelihood(decoder, z, likelihood=model.likelihood, chunk_size=500),
        "prior": lambda: score_latents(model, "prior", z),
        "distance_to_data": lambda: score_latents(model, "distance_to_data", z, data=rest),
    }
    values: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, scorer in scorers.items():
        report(name, 0.0)
        start = time.perf_counter()
        values[name] = scorer().detach().cpu().numpy()
        seconds[name] = round(time.perf_counter() - start, 3)
    report("done", 1.0)
    means = {
        score: {
            group: float(np.mean(v[(names == group) & np.isfinite(v)]))
            if ((names == group) & np.isfinite(v)).any()
            else float("nan")
            for group in groups
        }
        for score, v in values.items()
    }
    examples = {}
    for group in groups:
        shown = np.flatnonzero(names == group)[:EXAMPLES_PER_GROUP]
        texts = _describe(model, [objects[i] for i in shown])
        examples[group] = [(text, bool(valid[i])) for text, i in zip(texts, shown, strict=True)]
    return Evaluation(
        model=model.name,
        seed=seed,
        group_size=group_size,
        far_scale=FAR_SCALE,
        validity={
            group: float(valid[names == group].mean()) if (names == group).any() else math.nan
            for group in groups
        },
        auroc={name: _auroc(valid, v) for name, v in values.items()},
        seconds=seconds,
        means=means,
        non_finite={name: int((~np.isfinite(v)).sum()) for name, v in values.items()},
        examples=examples,
        reconstruction=reference_reconstruction(model) if reconstruction else {},
        raw={"group": names, "valid": valid, **values},
    )


def reference_reconstruction(model: VAEModel) -> dict[str, float]:
    """How much of its shipped held-out reference a sequence model gives back: the reference
    latents (encoder means) decoded greedily and compared with the reference strings; {} for
    image models or a model without reference strings."""
    objects = list(model.data_objects)
    if model.render == "image" or not objects or not all(isinstance(o, str) for o in objects):
        return {}
    decoded = model.decode(model.data_latents)
    exact = [a == b for a, b in zip(objects, decoded, strict=True)]
    record = {
        "n": float(len(objects)),
        "exact": float(np.mean(exact)),
        "decoded_valid": float(np.mean(model.validity(decoded))),
    }
    if model.manifest.get("task") == "molecules":
        from scales_viz.models.molecules import canonical_smiles

        same = [
            hit or (canonical_smiles(b) is not None and canonical_smiles(a) == canonical_smiles(b))
            for a, b, hit in zip(objects, decoded, exact, strict=True)
        ]
        record["canonical"] = float(np.mean(same))
    return record


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}f}"


def _verdict(evaluation: Evaluation) -> str:
    """One honest sentence on how ScaLES compares with the baselines."""
    scales_auc = evaluation.auroc["scales"]
    if not np.isfinite(scales_auc):
        return "AUROC is undefined here: every evaluated point has the same validity."
    better = {
        name: auc
        for name, auc in evaluation.auroc.items()
        if name != "scales" and np.isfinite(auc) and auc > scales_auc
    }
    if not better:
        return f"ScaLES has the highest valid-generation AUROC on this model ({scales_auc:.3f})."
    listed = ", ".join(f"{SCORE_LABELS[n]} ({a:.3f})" for n, a in better.items())
    note = (
        " An AUROC below 0.5 means the score ranks invalid points above valid ones."
        if scales_auc < 0.5
        else ""
    )
    return f"ScaLES ({scales_auc:.3f}) does not beat {listed} on this model.{note}"


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _section_model(model: VAEModel) -> list[str]:
    m = model.manifest
    data = m.get("data", {})
    if data.get("kind") == "sequence":
        shape = f"categorical, L={data['seq_len']}, V={len(data['vocabulary'])}"
        vocab = " ".join(f"`{t}`" for t in data["vocabulary"])
        shape += f"; vocabulary {vocab} (the last is the pad)"
    else:
        height, width = data.get("shape", ["?", "?"])
        shape = f"Bernoulli pixels, {height}x{width}"
    lines = [
        "## Model",
        "",
        f"- Task: {m.get('task')}; objects render as {model.render}.",
        f"- Latent dimension d={model.latent_dim}; prior N(0, {model.prior_scale:g}^2 I).",
        f"- Output: {shape}.",
    ]
    for key in ("decoder", "encoder", "classifier"):
        spec = m.get(key)
        if spec is None:
            continue
        if not hasattr(spec, "architecture"):  # a user manifest's or checkpoint's own record
            kind = type(getattr(model, key, None)).__name__ if key != "classifier" else "-"
            lines.append(f"- {key.capitalize()}: `{kind}` (from {m.get('source', 'the user')}).")
            continue
        params = ", ".join(f"{k}={v}" for k, v in spec.params.items())
        lines.append(f"- {key.capitalize()}: `{spec.architecture}({params})`, file `{spec.file}`.")
    sizes = f"- Parameters: decoder {_params(model.decoder):,}, encoder {_params(model.encoder):,}."
    lines += [sizes, ""]
    return lines


def _section_data_training(model: VAEModel) -> list[str]:
    m = model.manifest
    dataset = m.get("dataset", {})
    training = m.get("training", {})
    lines = ["## Data", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in dataset.items()]
    lines += [f"- Reference latents shipped: {model.data_latents.shape[0]}.", ""]
    lines += ["## Training", ""]
    if not training:
        lines += [
            "Not trained by scales-viz: no training record comes with this model (where its "
            "weights come from is under Data).",
            "",
        ]
    keys = (
        "seed",
        "epochs",
        "batch_size",
        "learning_rate",
        "kl_warmup_epochs",
        "beta",
        "grad_clip",
        "threads",
        "train_seconds",
        "torch_version",
        "package_version",
    )
    lines += [f"- {k.replace('_', ' ')}: {training[k]}" for k in keys if k in training]
    if "command" in training:
        lines.append(f"- Command: `{training['command']}`")
    if model.directory is not None and (model.directory / "training_log.json").is_file():
        lines.append("- The per-epoch (or per-log-step) record is in `training_log.json`.")
    if training:
        lines.append("")
    metrics = _flatten(m.get("metrics", {}))
    if metrics:
        lines += [
            "## Reconstruction and fit (measured after training)",
            "",
            "Reconstructions decode the encoder mean. Sequence accuracy counts strings whose "
            "every position (pads included) comes back; cross-entropy and BCE are nats per "
            "example.",
            "",
            "| measure | value |",
            "|---|---|",
            *(f"| {key} | {value} |" for key, value in metrics),
            "",
        ]
    return lines


def _flatten(record: dict[str, Any], prefix: str = "") -> list[tuple[str, object]]:
    """Nested metrics as ("outer / inner", value) rows."""
    rows: list[tuple[str, object]] = []
    for key, value in record.items():
        name = prefix + key.replace("_", " ")
        if isinstance(value, dict):
            rows += _flatten(value, f"{name} / ")
        else:
            rows.append((name, value))
    return rows


def _section_evaluation(evaluation: Evaluation) -> list[str]:
    n = evaluation.group_size
    lines = [
        "## Validity of decodings",
        "",
        "| group | points | valid |",
        "|---|---|---|",
    ]
    for group in GROUPS:
        lines.append(f"| {group} | {n} | {evaluation.validity[group]:.1%} |")
    lines += [
        "",
        f"Groups: encoded data latents (encoder means of held-out data where the model has "
        f"them), prior samples N(0, s^2 I), and far samples at {evaluation.far_scale:g}x the "
        "prior scale s. Validity is that of the argmax (categorical) or mean (Bernoulli) "
        "decoding.",
        "",
        "## Valid-generation AUROC (the paper's protocol)",
        "",
        "| score | AUROC | seconds (all points) | mean on data | on prior | on far | non-finite |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCORES:
        mean = evaluation.means[name]
        lines.append(
            f"| {SCORE_LABELS[name]} | {_fmt(evaluation.auroc[name])} | "
            f"{evaluation.seconds[name]:.2f} | {_fmt(mean['data'], 2)} | "
            f"{_fmt(mean['prior'], 2)} | {_fmt(mean['far'], 2)} | {evaluation.non_finite[name]} |"
        )
    lines += ["", _verdict(evaluation), ""]
    rec = evaluation.reconstruction
    if rec:
        same = (
            f"; the same molecule (canonical SMILES) {rec['canonical']:.1%}"
            if "canonical" in rec
            else ""
        )
        lines += [
            "## Reconstruction of held-out data",
            "",
            f"The {int(rec['n']):,} held-out examples shipped as the reference, decoded "
            f"greedily from their encoder means: the same string {rec['exact']:.1%}{same}; "
            f"decodings valid {rec['decoded_valid']:.1%}.",
            "",
        ]
    lines += ["## Example decodings", ""]
    for group, examples in evaluation.examples.items():
        shown = "; ".join(f"`{text}` ({'valid' if ok else 'invalid'})" for text, ok in examples)
        lines.append(f"- {group}: {shown}")
    lines.append("")
    return lines


def card_record(directory: Path) -> dict[str, Any]:
    """A model directory's measured card (``evaluation.json``) as a dict, or {} when it has
    none or it is unreadable."""
    try:
        record = json.loads((directory / "evaluation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


#: Measured contrasts kept beside a built-in model: models of its task that were trained and
#: measured with the same protocol but are not shipped (``scales-viz evaluate SPEC
#: --contrast-of NAME`` writes them).
CONTRASTS_FILE = "contrasts.json"


def contrast_records(directory: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """The measured contrasts kept in a model directory, as ``(name, manifest, evaluation)``
    records for :func:`family_rows` (names end in "(measured, not shipped)"); [] when it has
    none or the file is unreadable."""
    try:
        entries = json.loads((directory / CONTRASTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    records = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and {"name", "manifest", "evaluation"} <= set(entry):
            label = f"{entry['name']} (measured, not shipped)"
            records.append((label, dict(entry["manifest"]), dict(entry["evaluation"])))
    return records


def raw_manifest(model: VAEModel) -> dict[str, Any]:
    """The model's manifest as plain JSON data (a model directory's own manifest.json)."""
    if model.directory is not None and (model.directory / "manifest.json").is_file():
        record = json.loads((model.directory / "manifest.json").read_text(encoding="utf-8"))
        if isinstance(record, dict):
            return record
    return dict(json.loads(json.dumps(model.manifest, default=str)))


def add_contrast(
    directory: Path, name: str, manifest: dict[str, Any], evaluation: Evaluation
) -> Path:
    """Keep a measured model of the same task beside built-in `directory` (replacing an
    earlier record of the same name): its decoder, training record and measured evaluation,
    not its weights."""
    path = directory / CONTRASTS_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = []
    kept = {
        key: manifest[key] for key in ("task", "decoder", "metrics", "training") if key in manifest
    }
    entries = [e for e in entries if isinstance(e, dict) and e.get("name") != name]
    entries.append({"name": name, "manifest": kept, "evaluation": evaluation.to_dict()})
    path.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return path


def decoder_family(manifest: dict[str, Any]) -> str:
    """In words, how a model's decoder maps `z` to logits (what ScaLES differentiates)."""
    spec = manifest.get("decoder")
    architecture = getattr(spec, "architecture", None) or (
        spec.get("architecture") if isinstance(spec, dict) else None
    )
    params = getattr(spec, "params", None) or (
        spec.get("params", {}) if isinstance(spec, dict) else {}
    )
    if architecture == "softmax_input_rnn":
        if params.get("feedback") == "hard":
            return "autoregressive: argmax fed back (smooth only through the latent context)"
        return "smooth: its own softmax fed back at every step"
    if architecture == "softmax_feedback_rnn":
        return "the paper's: RNN on the latent, softmax fed to the output head (smooth)"
    if architecture in ("bernoulli_mlp", "bernoulli_conv"):
        return "pixels: a smooth map to Bernoulli means"
    if architecture == "mlp_sequence":
        return "MLP to all positions at once (smooth)"
    if architecture == "transformer_sequence":
        return "transformer reading the latent as memory (smooth)"
    return str(architecture or "unknown")


def family_rows(records: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per model for the decoder-family comparison.

    Args:
        records: `(name, manifest, evaluation)` where `evaluation` is an ``evaluation.json``
            record (or :meth:`Evaluation.to_dict`) and `manifest` the model's manifest.

    Returns:
        Rows with the model, its decoder family, held-out reconstruction (the whole string
        back for sequences; the same digit class for images) and the share of held-out
        reconstructions that are valid (NaN when the model has no training record), validity
        of data, prior and far samples, and the valid-generation AUROC of every score.
    """
    rows = []
    for name, manifest, evaluation in records:
        held = manifest.get("metrics", {}).get("held_out", {})
        validity = evaluation.get("validity", {})
        auroc = evaluation.get("auroc", {})
        row: dict[str, Any] = {
            "model": name,
            "decoder": decoder_family(manifest),
            "reconstruction (held out)": float(
                held.get("sequence_accuracy", held.get("reconstruction_accuracy", math.nan))
            ),
            "held-out decoding valid": float(
                held.get("decoded_valid", held.get("reconstruction_valid_rate", math.nan))
            ),
            **{f"valid: {g}": float(validity.get(g, math.nan)) for g in GROUPS},
            **{f"AUROC {SCORE_LABELS[k]}": float(auroc.get(k, math.nan)) for k in SCORES},
        }
        rows.append(row)
    return rows


def scales_caveat(evaluation: dict[str, Any]) -> str | None:
    """A plain warning when a measured card shows that ScaLES does not separate validity on
    a model (AUROC under 0.6, or below a baseline); None when it does."""
    auroc = evaluation.get("auroc", {})
    value = float(auroc.get("scales", math.nan))
    if not math.isfinite(value):
        return None
    best_name, best = max(
        ((k, float(v)) for k, v in auroc.items() if k != "scales" and math.isfinite(float(v))),
        key=lambda item: item[1],
        default=("", math.nan),
    )
    if value >= 0.6 and not (math.isfinite(best) and best > value):
        return None
    rival = f", below {SCORE_LABELS.get(best_name, best_name)} ({best:.2f})" if best > value else ""
    return (
        f"On this model ScaLES does not separate valid from invalid decodings well: its "
        f"valid-generation AUROC is {value:.2f}{rival} (0.5 = chance). Treat its heatmaps here "
        "as a picture of the decoder's geometry, not as a realism map."
    )


def _section_families(model: VAEModel) -> list[str]:
    """The decoder-family comparison among the built-in models of this model's task."""
    from scales_viz.models.manifest import ManifestError, load_manifest
    from scales_viz.models.registry import MODELS_DIR

    task = model.manifest.get("task")
    records = []
    for directory in sorted(MODELS_DIR.iterdir()) if MODELS_DIR.is_dir() else []:
        evaluation = card_record(directory)
        if not evaluation:
            continue
        try:
            manifest = load_manifest(directory)
        except (ManifestError, ValueError, OSError):
            continue
        if manifest.get("task") == task:
            records.append((directory.name, manifest, evaluation))
    if model.directory is not None:
        records += contrast_records(model.directory)
    if len(records) < 2:
        return []
    rows = family_rows(records)
    keys = list(rows[0])
    lines = [
        "## Decoder families on this task",
        "",
        "The built-in models of this task side by side, each measured as above "
        "(`scales-viz evaluate NAME`), with any contrast trained and measured the same way "
        "but not shipped: does ScaLES apply to a decoder like mine?",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
    ]
    for row in rows:
        cells = [_fmt(v, 3) if isinstance(v, float) else str(v) for v in (row[k] for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def model_card(model: VAEModel, evaluation: Evaluation) -> str:
    """The model card (Markdown) from the manifest and a measured evaluation."""
    lines = [
        f"# Model card: {model.name}",
        "",
        str(model.manifest.get("description", "")),
        "",
        f"Written by `scales-viz evaluate {model.name} --seed {evaluation.seed}`; every number "
        "below is measured (CPU, float64 scores), none is copied from elsewhere.",
        "",
    ]
    lines += _section_model(model)
    lines += _section_data_training(model)
    lines += _section_evaluation(evaluation)
    caveat = scales_caveat(evaluation.to_dict())
    if caveat:
        lines += [f"**{caveat}**", ""]
    lines += _section_families(model)
    return "\n".join(lines)


def write_model_card(model: VAEModel, evaluation: Evaluation, directory: Path) -> Path:
    """Write ``README.md`` (the card) and ``evaluation.json`` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "evaluation.json").write_text(
        json.dumps(evaluation.to_dict(), indent=1) + "\n", encoding="utf-8"
    )
    path = directory / "README.md"
    path.write_text(model_card(model, evaluation), encoding="utf-8")
    return path
