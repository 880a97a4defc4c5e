"""Vector arithmetic on a generator's codes (Radford et al. 2016, section 6.3): the mean code of one group of
samples, minus another's, plus a third's, decoded.

The groups are chosen among prior samples by an attribute classifier: draw codes z ~ N(0, I), decode them, and put
each in the groups whose attributes the classifier sees (a group is a list of attributes present or absent, e.g.
Smiling and Eyeglasses). For "smiling with glasses - neutral with glasses + neutral without glasses" the result
should be a smiling face without glasses; the classifier reads the result and its noisy variants back, so the figure
comes with a number. Like the paper, the result is shown with small noise added to its code (variants), since a
single decode of an average can be unrepresentative.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from genlab import latent
from genlab.editing import PREDICT_BATCH, attribute_classifier, predict_attributes
from genlab.errors import ConfigError, RunError
from genlab.figures import LabelledFigure, checked_model, labelled
from genlab.images import GridLabels
from genlab.runs.store import Run

MIN_GROUP = 3  # samples a group must find among the draws for its mean code to mean anything


@dataclass(frozen=True)
class Group:
    """Attributes that must be present (True) or absent (False), by name: 'Smiling,no-Eyeglasses'."""

    wanted: tuple[tuple[str, bool], ...]

    @classmethod
    def parse(cls, text: str, names: Sequence[str]) -> Group:
        """'Smiling,no-Eyeglasses' (a leading no- or - means absent) -> Group, each name one of `names`."""
        wanted = []
        for part in (p.strip() for p in text.split(",")):
            absent = part.startswith(("no-", "-"))
            name = part.removeprefix("no-").removeprefix("-").strip()
            if name not in names:
                raise ConfigError(f"group {text!r}: {name!r} is not an attribute of the classifier; it knows "
                                  f"{', '.join(names)} (no-NAME for absent)")
            wanted.append((name, not absent))
        if len({name for name, _ in wanted}) < len(wanted):
            raise ConfigError(f"group {text!r} names an attribute twice")
        return cls(tuple(wanted))

    def members(self, found: Tensor, names: Sequence[str]) -> Tensor:
        """bool (N,): which of the predictions `found` (N, A) hold every wanted attribute as wanted."""
        keep = torch.ones(found.shape[0], dtype=torch.bool)
        for name, present in self.wanted:
            keep &= found[:, names.index(name)] == present
        return keep

    def text(self) -> str:
        return ", ".join(name if present else f"no {name}" for name, present in self.wanted)


@dataclass(frozen=True)
class Arithmetic:
    """The three groups' samples and mean codes, the result A - B + C and its variants, and how they read."""

    groups: tuple[Group, Group, Group]
    counts: tuple[int, int, int]    # samples found in each group among `draws`
    draws: int
    examples: list[Tensor]          # per group, the first few of its decoded samples (k, C, H, W)
    means: Tensor                   # decodes of the three mean codes (3, C, H, W)
    result: Tensor                  # decode of A - B + C, then of its noisy variants (1 + v, C, H, W)
    expected: Group                 # what the result should show: the attributes the three groups settle
    result_share: float             # of result and variants, the share the classifier reads as `expected`
    noise: float


def expected_group(groups: Sequence[Group]) -> Group:
    """The attributes A - B + C settles, counting present as 1 and absent as 0: where that sum is 0 or 1, the
    result should show it absent or present ('Smiling' 1 - 0 + 0 = 1; 'Eyeglasses' 1 - 1 + 0 = 0)."""
    values: dict[str, list[int | None]] = {}
    for i, group in enumerate(groups):
        for name, present in group.wanted:
            values.setdefault(name, [None, None, None])[i] = int(present)
    settled = []
    for name, (a, b, c) in values.items():
        if None not in (a, b, c) and a - b + c in (0, 1):
            settled.append((name, a - b + c == 1))
    return Group(tuple(settled))


@torch.no_grad()
def code_arithmetic(model: nn.Module, classifier: nn.Module, names: Sequence[str], groups: Sequence[Group],
                    draws: int = 2000, seed: int = 0, shown: int = 5, variants: int = 5,
                    noise: float = 0.25) -> Arithmetic:
    """Draw `draws` prior codes (from `seed`), decode them, sort them into the three groups by the classifier's
    predictions, and decode mean(A) - mean(B) + mean(C) and `variants` copies of it with N(0, noise^2) added to
    each coordinate."""
    if len(groups) != 3:
        raise ConfigError(f"vector arithmetic takes three groups, A - B + C; got {len(groups)}")
    codes = latent.seeded_codes(model, draws, seed)
    images = torch.cat([latent.decode_images(model, chunk).cpu() for chunk in codes.split(PREDICT_BATCH)])
    found = predict_attributes(classifier, images)
    members = [group.members(found, names) for group in groups]
    counts = tuple(int(m.sum()) for m in members)
    for group, count in zip(groups, counts):
        if count < MIN_GROUP:
            raise ConfigError(f"only {count} of {draws} samples show {group.text()} (at least {MIN_GROUP} needed): "
                              f"draw more with --samples, or choose groups the model makes")
    means = torch.stack([codes[m].mean(0) for m in members])
    target = means[0] - means[1] + means[2]
    generator = torch.Generator().manual_seed(seed + 1)
    result_codes = torch.cat([target[None], target + noise * torch.randn(variants, target.shape[0],
                                                                          generator=generator)])
    result = latent.decode_images(model, result_codes).cpu()
    expected = expected_group(groups)
    read = predict_attributes(classifier, result)
    share = float(expected.members(read, names).float().mean()) if expected.wanted else float("nan")
    return Arithmetic(tuple(groups), counts, draws, [images[m][:shown] for m in members],  # type: ignore[arg-type]
                      latent.decode_images(model, means).cpu(), result, expected, share, noise)


def arithmetic_figure(run: Run, classifier_run: Run, groups: Sequence[str], draws: int = 2000, seed: int = 0,
                      shown: int = 5, noise: float = 0.25, zoom: int | None = None) -> LabelledFigure:
    """The figure of `code_arithmetic` on a run's generator, its groups judged by an attribute-classifier run: a
    row per group (samples, then the decoded mean code) and a row for A - B + C (noisy variants, then the exact
    result), with the classifier's reading of the result in the caption."""
    model = checked_model(run, "decoder")
    classifier = attribute_classifier(classifier_run)
    if tuple(classifier.config.image_shape) != tuple(run.record.data.image_shape):
        raise RunError(f"the classifier in {classifier_run.path} reads {shape_text(classifier.config.image_shape)} "
                       f"images but {run.path} makes {shape_text(run.record.data.image_shape)}: train both on the same data")
    names = list(classifier_run.dataset().attribute_names)
    parsed = [Group.parse(text, names) for text in groups]
    done = code_arithmetic(model, classifier, names, parsed, draws, seed, shown, shown, noise)
    blank = torch.ones_like(done.means[0])  # where a group has fewer samples than the row has places
    rows = []
    for examples, mean in zip(done.examples, done.means):
        rows += [*examples, *[blank] * (shown - len(examples)), mean]
    rows += [*done.result[1:], done.result[0]]
    letters = "ABC"
    row_names = [f"{letters[i]}: {g.text()} ({n} of {draws})" for i, (g, n) in enumerate(zip(parsed, done.counts))]
    row_names.append("A - B + C")
    reading = (f"the classifier reads {done.expected.text()} on {100 * done.result_share:.0f}% of the result and "
               f"its variants" if done.expected.wanted else "the groups settle no attribute for the result")
    caption = (f"Vector arithmetic on the codes of {run.path.name}: {draws} prior samples (seed {seed}) sorted into "
               f"groups by the attribute classifier {classifier_run.path.name}; each group row shows {shown} of its "
               f"samples and the decode of its mean code; the last row shows the mean codes' A - B + C with "
               f"N(0, {noise:g}^2) noise added ({shown} variants) and exactly (last column); {reading}")
    labels = GridLabels(columns=[*(str(i + 1) for i in range(shown)), "mean code"], rows=row_names,
                        across="samples (last row: A - B + C + noise), then the mean code ->",
                        title="Vector arithmetic: A - B + C")
    figure = labelled(torch.stack(rows), shown + 1, labels, caption, "arithmetic.png", zoom)
    return replace(figure, note=reading[0].upper() + reading[1:] + ".")


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)
