"""Vector arithmetic on a generator's codes: groups parsed and settled, the sums exact on a known generator, and
`genlab explore arithmetic` on two tiny runs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import fails
from safetensors.torch import save_file
from torch import nn

from genlab import latent
from genlab.cli import main
from genlab.editing import predict_attributes
from genlab.errors import ConfigError
from genlab.figures import read_caption
from genlab.models.registry import create_model, data_fields
from genlab.runs.layout import RunLayout
from genlab.runs.store import load_run
from genlab.training.trainer import train
from genlab.vector_arithmetic import Group, code_arithmetic, expected_group

NAMES = ["Smiling", "Eyeglasses"]


class PlaneGenerator(nn.Module):
    """A 'generator' whose 2-pixel image is its code: G(z) = z."""

    latent_dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, for the device

    def decode(self, z):
        return z.view(-1, 1, 1, 2)

    def to_image(self, decoded):
        return decoded


class SignClassifier(nn.Module):
    """Attribute i is present where pixel i is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def logits(self, x):
        return x.flatten(1)


def test_groups_are_parsed_by_name_with_a_minus_for_absent() -> None:
    assert Group.parse("Smiling, no-Eyeglasses", NAMES).wanted == (("Smiling", True), ("Eyeglasses", False))
    assert Group.parse("-Smiling", NAMES).text() == "no Smiling"  # the Python API's short form
    with pytest.raises(ConfigError, match="'Bald' is not an attribute of the classifier; it knows Smiling"):
        Group.parse("Smiling,Bald", NAMES)
    with pytest.raises(ConfigError, match="names an attribute twice"):
        Group.parse("Smiling,-Smiling", NAMES)


def test_the_result_should_show_what_a_minus_b_plus_c_settles() -> None:
    groups = [Group.parse(t, NAMES) for t in ("Smiling,Eyeglasses", "-Smiling,Eyeglasses", "-Smiling,-Eyeglasses")]
    assert expected_group(groups).wanted == (("Smiling", True), ("Eyeglasses", False))
    twice = [Group.parse(t, NAMES) for t in ("Smiling", "-Smiling", "Smiling")]  # 1 - 0 + 1 = 2: not settled
    assert expected_group(twice).wanted == ()


def test_the_sum_of_mean_codes_is_exact_on_a_known_generator() -> None:
    groups = [Group.parse(t, NAMES) for t in ("Smiling,Eyeglasses", "-Smiling,Eyeglasses", "-Smiling,-Eyeglasses")]
    done = code_arithmetic(PlaneGenerator(), SignClassifier(), NAMES, groups, draws=400, seed=3, shown=4,
                           variants=6, noise=0.0)
    codes = latent.seeded_codes(PlaneGenerator(), 400, 3)
    quadrant = [(codes[:, 0] > 0) & (codes[:, 1] > 0), (codes[:, 0] <= 0) & (codes[:, 1] > 0),
                (codes[:, 0] <= 0) & (codes[:, 1] <= 0)]
    means = [codes[q].mean(0) for q in quadrant]
    assert done.counts == tuple(int(q.sum()) for q in quadrant) and sum(done.counts) < 400
    torch.testing.assert_close(done.means.flatten(1), torch.stack(means))
    torch.testing.assert_close(done.result.flatten(1), (means[0] - means[1] + means[2]).expand(7, 2))
    assert [len(e) for e in done.examples] == [4, 4, 4]
    assert all((done.examples[0].flatten(1) > 0).all(1))  # group A's samples: both pixels positive
    assert done.expected.text() == "Smiling, no Eyeglasses" and done.result_share == 1.0


def test_noise_makes_distinct_variants_and_a_small_group_is_refused() -> None:
    groups = [Group.parse(t, NAMES) for t in ("Smiling", "-Smiling", "Eyeglasses")]
    done = code_arithmetic(PlaneGenerator(), SignClassifier(), NAMES, groups, draws=50, noise=0.5, variants=3)
    assert done.result.shape == (4, 1, 1, 2) and len({tuple(r.flatten().tolist()) for r in done.result}) == 4
    with pytest.raises(ConfigError, match=r"only [0-2] of 4 samples show .+ \(at least 3 needed\)"):
        code_arithmetic(PlaneGenerator(), SignClassifier(), NAMES,
                        [Group.parse(t, NAMES) for t in ("Smiling,Eyeglasses", "-Smiling", "Smiling")], draws=4)


@pytest.fixture(scope="module")
def gan_and_classifier(tiny_faces, tmp_path_factory) -> tuple[Path, Path]:
    """A DCGAN and an attribute classifier trained a few steps on 256 faces; the classifier's output biases are then
    set at the median logit of the generator's first 300 samples (seed 0), so that each attribute is present on
    half of them and every group of one or two attributes finds members."""
    from genlab.options import TrainConfig
    folder = tmp_path_factory.mktemp("arithmetic-runs")
    config = TrainConfig(epochs=1, batch_size=64, lr=2e-4, beta1=0.5, seed=0, device="cpu")
    torch.manual_seed(0)
    gan = create_model("dcgan", image_shape=tiny_faces.image_shape, dim=4, latent_dim=8)
    train(gan, tiny_faces, config, folder / "gan", log=lambda _: None, progress=False)
    fields = data_fields("attribute-classifier", tiny_faces.image_shape, 2, len(tiny_faces.attribute_names))
    classifier = create_model("attribute-classifier", **fields, conv_channels=(4, 8), feature_dim=16)
    train(classifier, tiny_faces, config.replace(lr=1e-3, beta1=0.9), folder / "classifier", log=lambda _: None,
          progress=False)
    model, run = load_run(folder / "gan").model, load_run(folder / "classifier")
    # four steps leave batch norm's running statistics near their start, so that in eval mode every sample looks the
    # same; measured afresh on 300 codes, they make the samples differ, and the classifier's reading robust
    model.train()
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.reset_running_stats()
            layer.momentum = None  # a plain average over the passes
    with torch.no_grad():
        model.generate(300)
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              RunLayout(folder / "gan").weights_file(best=False))
    images = latent.decode_images(model, latent.seeded_codes(model, 300, 0))
    with torch.no_grad():
        logits = run.model.logits(images)
    weights = {k: v.contiguous() for k, v in run.model.state_dict().items()}
    weights["head.1.bias"] = weights["head.1.bias"] - logits.median(0).values
    save_file(weights, RunLayout(folder / "classifier").weights_file(best=False))
    found = predict_attributes(load_run(folder / "classifier"), images)
    assert (found.float().mean(0) - 0.5).abs().max() < 0.01
    return folder / "gan", folder / "classifier"


def test_explore_arithmetic_writes_a_labelled_figure(gan_and_classifier, tiny_faces, capsys, tmp_path) -> None:
    gan, classifier = gan_and_classifier
    out = tmp_path / "sum.png"
    code = main(["explore", "arithmetic", str(gan), "--classifier", str(classifier), "--samples", "300",
                 "--groups", "Smiling,Eyeglasses", "no-Smiling,Eyeglasses", "no-Smiling,no-Eyeglasses", "-n", "3",
                 "--out", str(out)])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "The classifier reads Smiling, no Eyeglasses on " in printed and str(out) in printed
    caption = read_caption(out)
    assert "300 prior samples (seed 0)" in caption and "each group row shows 3 of its samples" in caption
    assert "N(0, 0.25^2) noise added (3 variants)" in caption


def test_explore_arithmetic_refuses_bad_groups_and_a_classless_classifier(gan_and_classifier, capsys) -> None:
    gan, classifier = gan_and_classifier
    fails(["explore", "arithmetic", str(gan), "--classifier", str(classifier), "--groups", "Smiling", "Bald",
           "no-Smiling"], capsys, "'Bald' is not an attribute of the classifier")
    fails(["explore", "arithmetic", str(gan), "--classifier", str(gan), "--groups", "Smiling", "no-Smiling",
           "Smiling"], capsys, "does not predict attributes")
    fails(["explore", "arithmetic", str(gan), "--classifier", str(classifier), "--samples", "4", "--groups",
           "Smiling,Eyeglasses", "no-Smiling,no-Eyeglasses", "Smiling,no-Eyeglasses"], capsys, "of 4 samples show",
          "(at least 3 needed)")


def test_the_attribute_benchmark_reads_samples_beside_the_data(gan_and_classifier) -> None:
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "sample_attributes.py"),
                           *map(str, gan_and_classifier), "--samples", "300"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "300 samples (seed 0) beside 300 test images" in lines[0]
    smiling = next(line for line in lines if line.startswith("Smiling "))
    assert smiling.split()[1] == "50.0%"  # the fixture put the biases at the samples' median logits
    assert "mean |samples - test| over the attributes:" in lines[-1]


def test_sample_reading_needs_an_attribute_classifier(gan_and_classifier) -> None:
    from genlab.editing import sample_reading
    from genlab.errors import RunError
    gan = load_run(gan_and_classifier[0])
    with pytest.raises(RunError, match="which does not predict attributes"):
        sample_reading(gan, gan, n=4)
