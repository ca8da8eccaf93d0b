"""A learned seam verifier against the suite's descriptor, on real texture with a known answer.

    python benchmarks/seam_verifier.py [--data DIR] [--rows 8] [--epochs 5] [--assemble]
    python benchmarks/seam_verifier.py --pictures 6      # after --assemble: the seams added at margin 6
    python benchmarks/seam_verifier.py --mask-breaks PNG # after --assemble: train–train seams whose masks break

Same ground truth as `benchmarks/seam_evidence.py`: every usable real tile is cut into two
halves of 50 rows (or columns), each min-max normalised and quantised on its own. The
tiles are split at random into a training part (70 %) and a held-out part (30 %).

The verifier is a small CNN that sees both sides of a candidate seam (the `rows` rows on
each side, each side standardised on its own) and says whether they continue each other.
It is trained on the training part's true pairs against hard negatives: for every side,
the chance partners the suite's descriptor ranks highest. The seam's 2-D context (the dip
of reflectors crossing it, their spacing) is what a 1-D seam descriptor cannot compare.

On the held-out part both are judged by the lone-link test the assembly uses: a link must
be the best of both its sides, with a margin over the second best (the descriptor: the
best / second-best distance ratio; the verifier: the difference of logits, among each
side's 10 best candidates by descriptor). TP: true pairs that pass; FP: with every true
partner taken away, sides whose best chance partner passes. The printout gives, at the
descriptor's FP rate for ratio limits 0.65 / 0.8 / 0.9, the TP rate each reaches.

`--assemble` then puts the verifier to work on the 22,000 real tiles (each side's 5 best
candidates by descriptor are scored): the suite's assembly runs unchanged except that a
link that is the verifier's mutual best with a logit margin ≥ m may also join alone (joins
that make several seams are still voted on). Per margin it prints the tiles placed,
collisions, and the mask agreement along train–train seams, and an estimate of how many
true bottom seams the real data holds: the verifier's bottom links at margin m divided by
its held-out TP rate at m (at margins where the held-out FP rate is about zero, almost
every such link is true and the TP rate says what share of the true seams it finds).
Takes about 20 min on 2 cores with native bf16; the layouts are kept in outputs/seam_verifier/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from seam_evidence import RATIOS, halves, lone_link_rates  # noqa: E402

from salt.data.tiles import load_split  # noqa: E402
from salt.mosaic.build import AssemblySettings, assemble_evidence, assemble_tiles  # noqa: E402
from salt.mosaic.edges import BOTTOM, DIRECTION_NAMES, DIRECTIONS, near_constant_tiles, side_descriptors  # noqa: E402
from salt.mosaic.evidence import SeamEvidence, closed_squares  # noqa: E402
from salt.mosaic.matching import Links  # noqa: E402
from salt.mosaic.quality import neighbour_pairs, seam_agreement  # noqa: E402

CANDIDATES = 10  # held-out sides: candidates the verifier scores, by descriptor rank
REAL_CANDIDATES = 5  # real sides (22,000 tiles: the scoring is what costs)
NEGATIVES = 3  # hard negatives per side in training
MARGINS = np.round(np.arange(0, 12.01, 0.5), 1)
OUT = REPO / "outputs" / "seam_verifier"  # the layouts per margin, for pictures


def strips(upper: np.ndarray, lower: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The `rows` rows on each side of the seam, each side standardised on its own."""

    def standardise(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=(1, 2), keepdims=True)
        return (x / np.maximum(x.std(axis=(1, 2), keepdims=True), 1e-3)).astype(np.float32)

    return standardise(upper[:, -rows:]), standardise(lower[:, :rows])


class Verifier(nn.Module):
    """(B, 2·rows, 101) seam neighbourhoods → (B,) logits that the two sides continue."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.body = nn.Sequential(
            *block(1, width),
            *block(width, width),
            nn.MaxPool2d((1, 2)),
            *block(width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 2 * width),
        )
        # Mean and max over the seam's length: a seam is wrong if it fails anywhere.
        self.head = nn.Linear(4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x[:, None])
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)[:, 0]


def pair_batch(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([a[i], b[j]], axis=1))


def score(model: Verifier, a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray, batch: int = 4096) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for s in range(0, len(i), batch):
            out.append(model(pair_batch(a, b, i[s : s + batch], j[s : s + batch])).float().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def hard_negatives(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's and each column's k best chance partners (the diagonal is the truth)."""
    s = sim.copy()
    np.fill_diagonal(s, -np.inf)
    rows = np.argpartition(-s, k, axis=1)[:, :k]
    cols = np.argpartition(-s, k, axis=0)[:k].T
    n = len(s)
    i = np.concatenate([np.repeat(np.arange(n), k), cols.ravel()])
    j = np.concatenate([rows.ravel(), np.repeat(np.arange(n), k)])
    return i, j


def train(a: np.ndarray, b: np.ndarray, sim: np.ndarray, epochs: int, seed: int) -> Verifier:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = len(a)
    neg_i, neg_j = hard_negatives(sim, NEGATIVES)
    i = np.concatenate([np.arange(n), neg_i])
    j = np.concatenate([np.arange(n), neg_j])
    y = np.concatenate([np.ones(n, np.float32), np.zeros(len(neg_i), np.float32)])
    model = Verifier()
    steps = epochs * (len(i) // 256)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(i))
        total, start = 0.0, time.perf_counter()
        for s in range(0, len(order) - 255, 256):
            idx = order[s : s + 256]
            x = pair_batch(a, b, i[idx], j[idx])
            if rng.random() < 0.5:  # a section mirrored left-right is still a section
                x = x.flip(-1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
            loss = loss_fn(logits.float(), torch.from_numpy(y[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item()
        print(f"    epoch {epoch + 1}: loss {total / (len(order) // 256):.4f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return model


def side_best(key: np.ndarray, other: np.ndarray, s: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of n sides (`key`), its best partner (`other`) by score and the margin over its second best."""
    order = np.lexsort((-s, key))
    key, other, s = key[order], other[order], s[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    has_second = np.r_[first[1:], len(key)] - first > 1
    second = np.where(has_second, s[np.minimum(first + 1, len(s) - 1)], -np.inf)
    best = np.full(n, -1)
    margin = np.full(n, -np.inf)
    finite = np.isfinite(s[first])
    best[key[first][finite]] = other[first][finite]
    margin[key[first][finite]] = (s[first] - second)[finite]
    return best, margin


def mutual_margins(i: np.ndarray, j: np.ndarray, s: np.ndarray, n_rows: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(row best partner, margin of the link): mutual best by score, the smaller of the two
    sides' margins over their second best; margin −inf where the row's best is not mutual."""
    row_best, row_margin = side_best(i, j, s, n_rows)
    col_best, col_margin = side_best(j, i, s, n_cols)
    rows = np.arange(n_rows)
    has = row_best >= 0
    margin = np.full(n_rows, -np.inf)
    mutual = np.zeros(n_rows, bool)
    mutual[has] = col_best[row_best[has]] == rows[has]
    margin[mutual] = np.minimum(row_margin[mutual], col_margin[row_best[mutual]])
    return row_best, margin


def lone_links(i: np.ndarray, j: np.ndarray, s: np.ndarray, n: int, margin_grid: np.ndarray) -> dict:
    """TP / FP rates of "mutual best with logit margin ≥ m" over a grid of m (pair i ↔ i is true)."""
    row_best, margin = mutual_margins(i, j, s, n, n)
    correct = row_best == np.arange(n)
    tp = np.array([(correct & (margin >= m)).mean() for m in margin_grid])
    _, margin = mutual_margins(i, j, np.where(i == j, -np.inf, s), n, n)
    fp = np.array([(margin >= m).mean() for m in margin_grid])
    return {"tp": tp, "fp": fp}


def candidate_pairs(sim: np.ndarray, k: int) -> np.ndarray:
    """(P, 2) every row's and every column's k best partners by descriptor, once each."""
    rows_top = np.argpartition(-sim, k, axis=1)[:, :k]
    cols_top = np.argpartition(-sim, k, axis=0)[:k].T
    n_rows, n_cols = sim.shape
    pairs = np.concatenate(
        [
            np.stack([np.repeat(np.arange(n_rows), k), rows_top.ravel()], 1),
            np.stack([cols_top.ravel(), np.repeat(np.arange(n_cols), k)], 1),
        ]
    )
    return np.unique(pairs, axis=0)


def held_out_rates(model: Verifier, a: np.ndarray, b: np.ndarray, sim: np.ndarray, width: int) -> dict:
    """Print and return the descriptor's and the verifier's lone-link rates on held-out halves."""
    n = len(a)
    base = lone_link_rates(sim, width)
    pairs = candidate_pairs(sim, CANDIDATES)
    start = time.perf_counter()
    s = score(model, a, b, pairs[:, 0], pairs[:, 1])
    print(f"  scored {len(pairs):,} held-out candidate pairs in {time.perf_counter() - start:.0f} s")
    learned = lone_links(pairs[:, 0], pairs[:, 1], s, n, MARGINS)
    best, _ = side_best(pairs[:, 0], pairs[:, 1], s, n)
    print(f"  top-1: descriptor {base['top1']:.3f}, verifier {(best == np.arange(n)).mean():.3f}")
    print("  ratio limit | descriptor TP / FP | verifier TP / FP at no more FP (margin)")
    for r in RATIOS:
        fp = base["fp"][r]
        within = learned["fp"] <= fp
        m = int(np.argmax(np.where(within, learned["tp"], -1)))
        print(f"  {r} | {base['tp'][r]:.3f} / {fp:.4f} | {learned['tp'][m]:.3f} / {learned['fp'][m]:.4f} (margin {MARGINS[m]:.1f})")
    print(
        "  verifier, margin: TP / FP  "
        + "  ".join(f"{m:g}: {t:.3f} / {f:.4f}" for m, t, f in zip(MARGINS, learned["tp"], learned["fp"]) if m == int(m)),
        flush=True,
    )
    return learned


@dataclass(frozen=True)
class VerifiedEvidence(SeamEvidence):
    """The suite's evidence, with verifier-strong links also strong enough to join alone."""

    verified: dict = field(default_factory=dict)  # direction → (L,) bool over `links`

    def strong(self, direction: int, index: int) -> bool:
        return bool(self.verified[direction][index]) or super().strong(direction, index)


def real_candidates(sides, k: int) -> np.ndarray:
    """(P, 2) tile pairs: every usable side's k best partners by descriptor, both ways."""
    rows, cols = np.flatnonzero(sides.near_ok), np.flatnonzero(sides.far_ok)
    sim = sides.near[rows] @ sides.far[cols].T  # 21,000² float32: 1.8 GB
    sim[rows[:, None] == cols[None, :]] = -np.inf  # never a tile with itself
    pairs = candidate_pairs(sim, k)
    return np.stack([rows[pairs[:, 0]], cols[pairs[:, 1]]], 1)


def placed_pairs(mosaic: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Neighbour pairs (a, b, direction) of the tiles in mosaics of ≥ 2 tiles."""
    placed = np.bincount(mosaic)[mosaic] >= 2
    return neighbour_pairs(np.where(placed, mosaic, -1), x, y)


def with_verified(base: Links, best: np.ndarray, margin: np.ndarray, near: np.ndarray, far: np.ndarray, m: float):
    """The suite's candidate links plus the verifier's links at margin ≥ m, and which are verified."""
    a = np.flatnonzero(margin >= m)
    b = best[a]
    known = {pair: i for i, pair in enumerate(zip(base.a.tolist(), base.b.tolist()))}
    new = np.array([pair not in known for pair in zip(a.tolist(), b.tolist())], bool)
    na, nb = a[new], b[new]
    distance = np.sqrt(np.maximum(2 - 2 * (near[na] * far[nb]).sum(1) / near.shape[1], 0)).astype(np.float32)
    links = Links(
        a=np.r_[base.a, na],
        b=np.r_[base.b, nb],
        distance=np.r_[base.distance, distance],
        ratio=np.r_[base.ratio, np.ones(len(na), np.float32)],  # tried after the suite's links
        mutual=np.r_[base.mutual, np.zeros(len(na), bool)],
    )
    verified = np.zeros(len(links.a), bool)
    verified[[known[pair] for pair in zip(a[~new].tolist(), b[~new].tolist())]] = True
    verified[len(base.a) :] = True
    return links, verified


def assemble_with_verifier(images, settings, models, rows_seen, margins, masks, labelled, rates) -> None:
    """The real assembly with verifier-strong lone links added, at each margin."""
    n = len(images)
    suite = assemble_tiles(images, settings)
    evidence = suite.evidence
    raw = images.astype(np.float32) / 255
    verified = {}
    for d in DIRECTIONS:
        pairs = real_candidates(evidence.sides[d], REAL_CANDIDATES)
        tiles = raw if d == BOTTOM else raw.transpose(0, 2, 1)
        last, first = strips(tiles, tiles, rows_seen)
        start = time.perf_counter()
        s = score(models[d], last, first, pairs[:, 0], pairs[:, 1])
        verified[d] = mutual_margins(pairs[:, 0], pairs[:, 1], s, n, n)
        print(f"  real {DIRECTION_NAMES[d]} seams: scored {len(pairs):,} candidate pairs in {time.perf_counter() - start:.0f} s", flush=True)
    print("  margin | verifier links bottom / right | est. true bottom seams | tiles placed | mosaics | collisions | neighbour pairs | train-train seams: mask agreement")
    for m in margins:
        if m is None:
            layout, counts, estimate = suite.layout, [0, 0], "–"
        else:
            links, flags = {}, {}
            for d in DIRECTIONS:
                sides = evidence.sides[d]
                links[d], flags[d] = with_verified(evidence.links[d], *verified[d], sides.near, sides.far, m)
            layout = assemble_evidence(
                n, VerifiedEvidence(evidence.sides, evidence.forward, evidence.backward, links, settings.rules, closed_squares(links, n), flags)
            )
            counts = [int(flags[d].sum()) for d in DIRECTIONS]
            estimate = f"{counts[0] / rates[BOTTOM]['tp'][int(np.argmin(np.abs(MARGINS - m)))]:,.0f}"
        placed = layout.sizes() >= 2
        cells = set(zip(layout.mosaic[placed].tolist(), layout.x[placed].tolist(), layout.y[placed].tolist()))
        pairs = placed_pairs(layout.mosaic, layout.x, layout.y)
        agreement, seams = seam_agreement(pairs, masks, labelled)
        print(
            f"  {'none (the suite)' if m is None else m} | {counts[0]:,} / {counts[1]:,} | {estimate} | {int(placed.sum()):,} | "
            f"{len(np.unique(layout.mosaic[placed]))} | {int(placed.sum()) - len(cells)} | {len(pairs):,} | {seams}: {agreement:.4f}",
            flush=True,
        )
        np.savez(OUT / f"layout_margin_{'None' if m is None else format(m, 'g')}.npz", mosaic=layout.mosaic, x=layout.x, y=layout.y)


def new_seams_picture(images: np.ndarray, margin: float, out: Path, count: int = 24, seed: int = 0) -> int:
    """PNG of `count` random seams the verifier's layout at `margin` has and the suite's has
    not: each pair shown as it would sit in the section (the upper / left tile first), on a
    202 × 202 cell, with ticks in the margin at the seam. Returns how many new seams exist."""
    from PIL import Image

    def pairs_of(name: str) -> set:
        layout = np.load(OUT / f"layout_margin_{name}.npz")
        return set(map(tuple, placed_pairs(layout["mosaic"], layout["x"], layout["y"]).tolist()))

    new = sorted(pairs_of(format(margin, "g")) - pairs_of("None"))
    rng = np.random.default_rng(seed)
    shown = [new[k] for k in rng.choice(len(new), size=min(count, len(new)), replace=False)]
    cols, cell, gap = 6, 202, 12
    rows = max(1, -(-len(shown) // cols))
    canvas = np.full((rows * (cell + gap), cols * (cell + gap)), 255, np.uint8)
    for k, (a, b, d) in enumerate(shown):
        y0, x0 = (k // cols) * (cell + gap) + gap // 2, (k % cols) * (cell + gap) + gap // 2
        if d == BOTTOM:
            canvas[y0 : y0 + 101, x0 + 50 : x0 + 151] = images[a]
            canvas[y0 + 101 : y0 + 202, x0 + 50 : x0 + 151] = images[b]
            canvas[y0 + 100 : y0 + 102, x0 + 40 : x0 + 48] = 0
        else:
            canvas[y0 + 50 : y0 + 151, x0 : x0 + 101] = images[a]
            canvas[y0 + 50 : y0 + 151, x0 + 101 : x0 + 202] = images[b]
            canvas[y0 + 40 : y0 + 48, x0 + 100 : x0 + 102] = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(out)
    return len(new)


def mask_breaks_picture(data: Path, out: Path, count: int = 18) -> tuple[int, int]:
    """PNG of the suite's train–train seams whose masks disagree on ≥ 95 % of the seam (salt
    overlaid in red), from the layout an earlier --assemble run kept. Returns (such seams,
    train–train seams)."""
    from PIL import Image

    train_tiles = load_split(data, "train")
    images, masks, n = train_tiles.images, train_tiles.masks.astype(bool), len(train_tiles)
    layout = np.load(OUT / "layout_margin_None.npz")
    pairs = placed_pairs(layout["mosaic"], layout["x"], layout["y"])
    pairs = pairs[(pairs[:, 0] < n) & (pairs[:, 1] < n)]  # train tiles come first
    a, b, d = pairs.T
    vertical = (d == BOTTOM)[:, None]
    agreement = (np.where(vertical, masks[a, -1, :], masks[a, :, -1]) == np.where(vertical, masks[b, 0, :], masks[b, :, 0])).mean(1)
    broken = pairs[agreement <= 0.05]

    def tinted(i: int) -> np.ndarray:
        rgb = np.repeat(images[i][..., None], 3, axis=2).astype(np.float32)
        rgb[masks[i]] = rgb[masks[i]] * 0.5 + np.array([255, 0, 0]) * 0.5
        return rgb.astype(np.uint8)

    cells = []
    for upper, lower, direction in broken[:count]:
        cell = np.full((202, 202, 3), 255, np.uint8)
        if direction == BOTTOM:
            cell[:101, 50:151], cell[101:, 50:151] = tinted(upper), tinted(lower)
        else:
            cell[50:151, :101], cell[50:151, 101:] = tinted(upper), tinted(lower)
        cells.append(np.pad(cell, ((6, 6), (6, 6), (0, 0)), constant_values=255))
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % 6)
    rows = [np.concatenate(cells[k : k + 6], axis=1) for k in range(0, len(cells), 6)]
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    return len(broken), len(pairs)


def main() -> None:
    default_data = os.environ.get("SALT_DATA_DIR", str(REPO.parent / "shared" / "tgs-salt"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--rows", type=int, default=8, help="rows on each side of the seam the verifier sees")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--assemble", action="store_true", help="also assemble the real tiles with verifier links")
    parser.add_argument("--margins", type=float, nargs="+", default=[10, 8, 7, 6, 5, 4, 3])
    parser.add_argument(
        "--pictures", type=float, metavar="MARGIN", help="only draw the seams an earlier --assemble run added at MARGIN"
    )
    parser.add_argument("--pictures-out", type=Path, default=OUT / "new_seams.png")
    parser.add_argument(
        "--mask-breaks", type=Path, metavar="PNG", help="only draw the suite's train–train seams whose masks disagree"
    )
    args = parser.parse_args()
    if args.mask_breaks is not None:
        broken, total = mask_breaks_picture(args.data, args.mask_breaks)
        print(f"{broken} of {total} train-train seams have masks that disagree on >= 95 % of the seam; drawn in {args.mask_breaks}")
        return
    if args.pictures is not None:
        images = np.concatenate([load_split(args.data, split).images for split in ("train", "test")])
        total = new_seams_picture(images, args.pictures, args.pictures_out)
        print(f"{total:,} seams added at margin {args.pictures:g}; a sample drawn in {args.pictures_out}")
        return
    torch.set_num_threads(os.cpu_count() or 1)
    train_tiles, test_tiles = load_split(args.data, "train"), load_split(args.data, "test")
    every = np.concatenate([train_tiles.images, test_tiles.images])
    images = every[~near_constant_tiles(every)]
    print(f"{len(images):,} usable tiles, each cut into two halves of 50 rows / columns")
    models, rates = {}, {}
    for d in DIRECTIONS:
        upper, lower = halves(images, DIRECTION_NAMES[d])
        above, below = side_descriptors(upper, BOTTOM), side_descriptors(lower, BOTTOM)
        ok = above.near_ok & below.far_ok
        upper, lower, near, far = upper[ok], lower[ok], above.near[ok], below.far[ok]
        held_out = np.random.default_rng(args.seed).random(len(upper)) < 0.3
        parts = {}
        for name, mask in (("train", ~held_out), ("held-out", held_out)):
            a, b = strips(upper[mask], lower[mask], args.rows)
            parts[name] = (a, b, near[mask] @ far[mask].T)
        print(f"{DIRECTION_NAMES[d]} seams: {int((~held_out).sum()):,} training pairs, {int(held_out.sum()):,} held out", flush=True)
        start = time.perf_counter()
        models[d] = train(*parts["train"], epochs=args.epochs, seed=args.seed)
        print(f"  trained in {time.perf_counter() - start:.0f} s", flush=True)
        rates[d] = held_out_rates(models[d], *parts["held-out"], near.shape[1])
        del parts
    if args.assemble:
        OUT.mkdir(parents=True, exist_ok=True)
        n_train = len(train_tiles)
        masks = np.zeros((len(every), 101, 101), dtype=bool)
        masks[:n_train] = train_tiles.masks
        labelled = np.arange(len(every)) < n_train
        print(f"real data: {len(every):,} tiles, verifier links among each side's {REAL_CANDIDATES} best candidates")
        assemble_with_verifier(every, AssemblySettings(), models, args.rows, [None, *args.margins], masks, labelled, rates)


if __name__ == "__main__":
    main()
