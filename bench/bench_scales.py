"""ScaLES speed, side by side: scales-viz's exact engine against the published algorithm.

The published algorithm is re-implemented here plainly, as the ScaLES authors describe and
ship it: forward differences with step 1e-4 in float32 over chunks of 200 points, the dense
`L(V+1) x LV` block matrix of softmax Jacobians built per position for every point, a batched
matmul with the finite-difference Jacobian, and the SVD of the `d x d` Gram matrix. Both run
in the same process on the same decoders (paper-sized, random weights), and so does the
floor: one batched forward over `n(d+1)` points, the work of the cheapest (inexact)
finite-difference Jacobian.

Usage: python bench/bench_scales.py [--repeats 3] [--device cpu] [--no-write]
Writes a section of bench/RESULTS.md (machine, date, table) unless --no-write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from results import machine, write_section
from torch import Tensor, nn

from scales_viz import scales
from scales_viz.models import SoftmaxFeedbackRNNDecoder
from scales_viz.models.decoders import MLPDecoder
from scales_viz.testing import WithoutStructuredJacobian

FD_STEP = 1e-4
PUBLISHED_CHUNK = 200


@dataclass(frozen=True)
class Size:
    name: str
    d: int
    L: int
    V: int
    n: int
    decoder: str = "gru"  # "gru": the paper's softmax-feedback GRU; "mlp": MLP_HIDDEN wide

    @property
    def key(self) -> str:
        return f"{self.name}-{self.decoder}"


MLP_HIDDEN = 256
# The three sizes (GRU, GRU, MLP), and the SELFIES size with the GRU as well.
SIZES = (
    Size("expressions", 25, 19, 15, 64),
    Size("SMILES", 56, 120, 35, 16),
    Size("SELFIES", 75, 72, 146, 4, "mlp"),
    Size("SELFIES", 75, 72, 146, 4),
)
#: The issue's targets for the generic path: speed-up over the published algorithm.
PUBLISHED_TARGET = {"expressions": 1.0, "SMILES": 1.5, "SELFIES": 10.0}
FLOOR_TARGET = 1.5


def make_decoder(size: Size) -> nn.Module:
    if size.decoder == "mlp":
        return MLPDecoder(size.d, size.L, size.V, hidden=MLP_HIDDEN)
    return SoftmaxFeedbackRNNDecoder(size.d, size.L, size.V)


def published_scales(decoder: nn.Module, z: Tensor) -> Tensor:
    """The authors' algorithm: float32 forward differences and the dense block matrix."""
    out = []
    with torch.no_grad():
        for chunk in z.split(PUBLISHED_CHUNK):
            m, d = chunk.shape
            shifted = chunk[:, None, :] + FD_STEP * torch.eye(d, dtype=chunk.dtype)[None]
            logits = decoder(torch.cat([chunk, shifted.reshape(m * d, d)]))
            base, moved = logits[:m], logits[m:].view(m, d, *logits.shape[1:])
            _, seq, vocab = base.shape
            jac = ((moved - base[:, None]) / FD_STEP).permute(0, 2, 3, 1).reshape(m, -1, d)
            probs = torch.softmax(base, -1)
            inv_c = torch.exp(-torch.logsumexp(base, -1))
            block = torch.zeros(m, seq * (vocab + 1), seq * vocab, dtype=chunk.dtype)
            for t in range(seq):
                p = probs[:, t]
                soft = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
                rows = slice(t * (vocab + 1), (t + 1) * (vocab + 1))
                cols = slice(t * vocab, (t + 1) * vocab)
                block[:, rows, cols] = torch.cat([soft, (-p * inv_c[:, t, None])[:, None]], 1)
            c = torch.bmm(block, jac)
            gram = c.mT @ c
            out.append(-0.5 * torch.log(torch.linalg.svdvals(gram)).sum(-1))
    return torch.cat(out)


def timed(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_size(size: Size, repeats: int, device: torch.device) -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        decoder = make_decoder(size).eval().to(device)
    z = (torch.randn(size.n, size.d, generator=gen) * 0.5).to(device)
    floor_batch = torch.randn(size.n * (size.d + 1), size.d, generator=gen).to(device)

    def floor() -> None:
        with torch.no_grad():
            decoder(floor_batch)

    generic = WithoutStructuredJacobian(decoder)
    row = {
        "floor": timed(floor, repeats),
        "ours": timed(lambda: scales(decoder, z), repeats),
        "generic": timed(lambda: scales(generic, z), repeats),
    }
    if device.type == "cpu":
        row["published"] = timed(lambda: published_scales(decoder, z), repeats)
        exact = scales(decoder.double(), z.double())
        decoder.float()
        rel = lambda got: float(((got.double() - exact) / exact.abs()).abs().max())  # noqa: E731
        row["err_published"] = rel(published_scales(decoder, z))
        row["err_ours"] = rel(scales(decoder, z))
    return row


def format_table(rows: dict[str, dict[str, float]], device: torch.device) -> str:
    lines = []
    if device.type == "cpu":
        lines += [
            "| size (d, L, V; n) | decoder | published (s) | scales-viz (s) | speed-up "
            "| floor (s) | ours / floor | published / floor | generic AD path (s) "
            "| generic / floor (target 1.5) | published / generic (target) "
            "| max rel. error published | ours |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
    else:
        lines += [
            "| size (d, L, V; n) | decoder | scales-viz (s) | floor (s) | ours / floor "
            "| generic AD path (s) | generic / floor |",
            "|---|---|---|---|---|---|---|",
        ]
    for size in SIZES:
        if size.key not in rows:
            continue
        r = rows[size.key]
        label = f"{size.name} ({size.d}, {size.L}, {size.V}; n={size.n})"
        decoder = "GRU" if size.decoder == "gru" else f"MLP ({MLP_HIDDEN})"
        if device.type == "cpu":
            target = PUBLISHED_TARGET[size.name]
            lines.append(
                f"| {label} | {decoder} | {r['published']:.3f} | {r['ours']:.3f} | "
                f"**{r['published'] / r['ours']:.2f}x** | {r['floor']:.3f} | "
                f"{r['ours'] / r['floor']:.2f} | {r['published'] / r['floor']:.2f} | "
                f"{r['generic']:.3f} | **{r['generic'] / r['floor']:.2f}** | "
                f"{r['published'] / r['generic']:.2f}x ({target:g}x) | "
                f"{r['err_published']:.1e} | {r['err_ours']:.1e} |"
            )
        else:
            lines.append(
                f"| {label} | {decoder} | {r['ours']:.4f} | {r['floor']:.4f} "
                f"| {r['ours'] / r['floor']:.2f} | {r['generic']:.4f} "
                f"| {r['generic'] / r['floor']:.2f} |"
            )
    return "\n".join(lines)


#: Built-in models timed on their own decoders (points per call).
BUILTINS = (("expressions", 64), ("expressions-ar", 64), ("molecules", 16))


def run_builtin(name: str, n: int, repeats: int, device: torch.device) -> dict[str, float]:
    """ScaLES on a shipped decoder against its floor (one no-grad forward over `n(d+1)`
    points) and the generic forward-AD path."""
    from scales_viz.models import load_model

    model = load_model(name)
    decoder = model.decoder.to(device)
    gen = torch.Generator().manual_seed(0)
    z = (torch.randn(n, model.latent_dim, generator=gen) * model.prior_scale).to(device)
    floor_batch = torch.randn(n * (model.latent_dim + 1), model.latent_dim, generator=gen)
    floor_batch = floor_batch.to(device)

    def floor() -> None:
        with torch.no_grad():
            decoder(floor_batch)

    generic = WithoutStructuredJacobian(decoder)
    return {
        "d": model.latent_dim,
        "floor": timed(floor, repeats),
        "ours": timed(lambda: scales(decoder, z), repeats),
        "generic": timed(lambda: scales(generic, z), repeats),
    }


def format_builtins(rows: dict[str, dict[str, float]]) -> str:
    lines = [
        "| built-in model (n) | decoder | scales-viz (s) | floor (s) | ours / floor "
        "| generic AD path (s) | generic / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, n in BUILTINS:
        if name not in rows:
            continue
        r = rows[name]
        lines.append(
            f"| {name} (n={n}, d={int(r['d'])}) | {r['family']} | {r['ours']:.3f} | "
            f"{r['floor']:.3f} | **{r['ours'] / r['floor']:.2f}** | {r['generic']:.3f} | "
            f"{r['generic'] / r['floor']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="*", default=[s.key for s in SIZES])
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--builtins",
        nargs="*",
        default=None,
        help="time the shipped decoders instead (default: all of them)",
    )
    args = parser.parse_args()
    if args.builtins is not None:
        main_builtins(args)
        return
    device = torch.device(args.device)
    rows = {}
    for size in SIZES:
        if size.key in args.sizes:
            rows[size.key] = run_size(size, args.repeats, device)
            print(size.key, {k: round(v, 4) for k, v in rows[size.key].items()}, flush=True)
    table = format_table(rows, device)
    print(table)
    if not args.no_write:
        stamp = dt.date.today().isoformat()
        body = (
            f"## ScaLES engine vs the published algorithm ({device.type})\n\n"
            f"`python bench/bench_scales.py --device {device.type}` on {stamp}; "
            f"{machine()}; median of {args.repeats} runs after a warm-up.\n\n{table}\n"
        )
        write_section(f"bench_scales-{device.type}", body)


def main_builtins(args: argparse.Namespace) -> None:
    from scales_viz.evaluation import decoder_family
    from scales_viz.models.manifest import load_manifest
    from scales_viz.models.registry import model_dir

    device = torch.device(args.device)
    wanted = args.builtins or [name for name, _ in BUILTINS]
    rows: dict[str, dict[str, float]] = {}
    for name, n in BUILTINS:
        if name in wanted and model_dir(name).is_dir():
            rows[name] = run_builtin(name, n, args.repeats, device)
            rows[name]["family"] = decoder_family(load_manifest(model_dir(name)))  # type: ignore[assignment]
            print(name, rows[name], flush=True)
    table = format_builtins(rows)
    print(table)
    if not args.no_write:
        stamp = dt.date.today().isoformat()
        body = (
            f"## ScaLES on the shipped decoders ({device.type})\n\n"
            f"`python bench/bench_scales.py --builtins --device {device.type}` on {stamp}; "
            f"{machine()}; median of {args.repeats} runs after a warm-up. Floor: one no-grad "
            "forward of the same decoder over `n(d+1)` points.\n\n" + table + "\n"
        )
        write_section(f"bench_scales_builtins-{device.type}", body)


if __name__ == "__main__":
    main()
