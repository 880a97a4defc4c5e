"""The contract suite: every registered model, built from its defaults, keeps the model contract."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models.contract import GAN, AutoEncoder, Classifier, Decoder, Generative
from genlab.models.contract import VAE as VAEProtocol
from genlab.models.registry import MODELS, create_model, data_fields, make_config
from genlab.models.table import TABLE, declared_config
from genlab.nn import memory_format
from genlab.options import TrainConfig
from genlab.runs.record import DataRecord, RunRecord
from genlab.runs.store import commit_epoch, load_run, write_record
from genlab.training.steps import model_loss
from genlab.training.trainer import train

NAMES = sorted(MODELS)
AUTOENCODERS = [n for n in NAMES if isinstance(create_model(n), AutoEncoder)]
VAES = [n for n in NAMES if isinstance(create_model(n), VAEProtocol)]
GANS = [n for n in NAMES if isinstance(create_model(n), GAN)]
CLASSIFIERS = [n for n in NAMES if isinstance(create_model(n), Classifier)]
DECODERS = [n for n in NAMES if isinstance(create_model(n), Decoder)]


def images(n: int = 4, shape=(1, 28, 28)) -> torch.Tensor:
    return torch.rand(n, *shape)


def labels(n: int = 4) -> torch.Tensor:
    return torch.arange(n) % 10


def targets(model, n: int = 4) -> torch.Tensor:
    """What the trainer feeds the model's loss beside n images: class indices, or an attribute classifier's 0/1 rows
    (float (n, A)); the labels of models without them are ignored."""
    if getattr(model, "targets", "classes") == "attributes":
        return (torch.arange(n * model.config.n_attributes).view(n, -1) % 3 == 0).float()
    return labels(n)


def attribute_model(name: str) -> bool:
    return getattr(make_config(name), "targets", "classes") == "attributes"


def outputs(model, x: torch.Tensor) -> list[torch.Tensor]:
    """What each kind of model computes from x, deterministically (eval mode)."""
    found = []
    if isinstance(model, AutoEncoder):
        found += [model.encode(x), model.reconstruct(x)]
    if isinstance(model, Generative):
        found.append(model.sample(3, generator=torch.Generator().manual_seed(7)))
    if isinstance(model, Classifier):
        found += [model.features(x), model.logits(x)]
    return found


def test_every_model_is_some_kind_the_trainer_knows() -> None:
    kinds = set(AUTOENCODERS) | set(GANS) | set(CLASSIFIERS)
    assert kinds == set(NAMES)
    assert len(VAES) >= 6 and GANS == ["dcgan"] and CLASSIFIERS == ["attribute-classifier", "classifier"]


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_a_finite_scalar_with_parts(name: str) -> None:
    model = create_model(name)
    parts = model_loss(model, images(), targets(model))
    assert "loss" in parts and ("rec" in parts or name not in AUTOENCODERS)
    assert all(v.shape == () and torch.isfinite(v) for v in parts.values())


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name: str) -> None:
    model = create_model(name)
    model_loss(model, images(), targets(model))["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", NAMES)
def test_trains_a_few_steps_on_shapes(name: str, tiny_shapes, tiny_faces, tiny_train_config) -> None:
    data = tiny_faces if attribute_model(name) else tiny_shapes  # shapes have no attributes to learn
    model = create_model(name, **data_fields(name, data.image_shape, len(data.classes), len(data.attribute_names)))
    before = [p.detach().clone() for p in model.parameters()]
    metrics = train(model, data, tiny_train_config.replace(max_steps=3), log=lambda _: None)
    assert metrics[-1]["step"] == 3
    assert all(math.isfinite(v) for split in ("train", "test") for v in metrics[-1][split].values())
    assert all(not torch.equal(p, q) for p, q in zip(before, model.parameters())), "every tensor learns"


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64)])
def test_encode_decode_reconstruct_shapes(name: str, shape) -> None:
    model = create_model(name, image_shape=shape).eval()
    x = images(3, shape)
    code = model.encode(x)
    assert code.shape == (3, model.latent_dim)
    assert model.decode(code).shape == (3, *shape)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1
    assert torch.equal(model.to_image(model.decode(code)), x_hat), "reconstruct = to_image(decode(encode(x)))"


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32), (3, 64, 64)])
def test_gan_samples_every_supported_size(name: str, shape) -> None:
    model = create_model(name, image_shape=shape).eval()
    samples = model.sample(2, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (2, *shape) and samples.min() >= 0 and samples.max() <= 1
    assert model.discriminator(samples * 2 - 1).shape == (2,)
    assert model.decode(torch.zeros(2, model.latent_dim)).shape == (2, *shape)


def test_every_model_with_a_latent_space_decodes_the_same_way() -> None:
    assert set(DECODERS) == set(AUTOENCODERS) | set(GANS)
    assert all(issubclass(MODELS[n].cls, Decoder) for n in DECODERS)
    assert not any(issubclass(MODELS[n].cls, Decoder) for n in CLASSIFIERS)


@pytest.mark.parametrize("name", DECODERS)
def test_to_image_of_decode_is_an_image(name: str) -> None:
    model = create_model(name).eval()
    z = 3 * torch.randn(4, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = model.to_image(model.decode(z))
    assert x.shape == (4, 1, 28, 28) and x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("name", GANS)
def test_gan_decodes_to_the_generators_tanh_output(name: str) -> None:
    model = create_model(name, dim=8).eval()
    z = torch.randn(3, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        decoded = model.decode(z)
        assert torch.equal(decoded, model.generator(z)) and decoded.min() < 0  # [-1, 1], not yet an image
        assert torch.equal(model.to_image(decoded), (decoded + 1) / 2)
        noise = model.noise(3, torch.Generator().manual_seed(5))
        assert torch.equal(model.sample(3, torch.Generator().manual_seed(5)), model.to_image(model.decode(noise)))
    assert torch.equal(model.to_image(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_instance_noise_reaches_every_image_the_discriminator_sees() -> None:
    plain, noisy = (create_model("dcgan", dim=8, instance_noise=s) for s in (0.0, 0.2))
    x = torch.zeros(64, 1, 28, 28)
    assert torch.equal(plain.with_noise(x), x)
    assert noisy.with_noise(x).std().item() == pytest.approx(0.2, rel=0.02)
    seen = []
    noisy.discriminator.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    fake = torch.full((64, 1, 28, 28), 0.5)
    noisy.d_loss(torch.ones(64, 1, 28, 28), fake)  # real images all white (1 in D's units), fakes all 0.5
    noisy.g_loss(64, fake)
    for images, clean in zip(seen, (1.0, 0.5, 0.5)):
        assert (images - clean).std().item() == pytest.approx(0.2, rel=0.02)


def test_spectral_norm_bounds_each_discriminator_layer_in_place_of_its_batch_norm() -> None:
    torch.manual_seed(0)
    plain, normed = (create_model("dcgan", dim=8, spectral_norm=s) for s in (False, True))

    def kinds(net: torch.nn.Module) -> list[str]:
        return [type(layer).__name__ for layer in net]
    assert "BatchNorm2d" in kinds(plain.discriminator) and "BatchNorm2d" not in kinds(normed.discriminator)
    assert kinds(normed.generator) == kinds(plain.generator)
    for _ in range(30):  # each training-mode forward takes one power-iteration step
        normed.discriminator(torch.randn(4, 1, 28, 28))
    convs = [layer for layer in normed.discriminator if isinstance(layer, torch.nn.Conv2d)]
    plain_convs = [layer for layer in plain.discriminator if isinstance(layer, torch.nn.Conv2d)]
    assert len(convs) == len(plain_convs) == 4
    for conv, plain_conv in zip(convs, plain_convs):
        assert torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.02)
        assert torch.linalg.matrix_norm(plain_conv.weight.detach().flatten(1), ord=2).item() < 0.8


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_outputs(name: str) -> None:
    by_attribute = attribute_model(name)
    model = create_model(name, **{"n_attributes" if by_attribute else "n_classes": 7}).eval()
    x = images(5)
    assert model.logits(x).shape == (5, 7)
    assert model.features(x).shape == (5, model.config.feature_dim)
    predicted = model.predict(x)
    assert (predicted.shape, predicted.dtype) == (((5, 7), torch.bool) if by_attribute else ((5,), torch.int64))


@pytest.mark.parametrize("name", VAES)
def test_vae_contract(name: str) -> None:
    model = create_model(name).eval()
    x = (images(5) > 0.5).float()
    mu, log_var = model.posterior(x)
    assert mu.shape == log_var.shape == (5, model.latent_dim)
    samples = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (6, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    again = model.sample(6, generator=torch.Generator().manual_seed(1))
    assert torch.equal(samples, again), "a seeded generator must give the same samples"
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(50)]).mean(0)
        log_px = model.log_likelihood(x, k=200)
    assert elbo.shape == log_px.shape == (5,)
    assert (log_px >= elbo - 1.0).all(), "the IWAE estimate is a tighter bound than the ELBO"
    assert (log_px < 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name: str, tmp_path) -> None:
    assert_round_trip(name, create_model(name), tmp_path)


def test_a_spectrally_normalised_dcgan_round_trips(tmp_path) -> None:
    assert_round_trip("dcgan", create_model("dcgan", dim=8, spectral_norm=True), tmp_path)


def assert_round_trip(name: str, model: torch.nn.Module, tmp_path) -> None:
    model_loss(model, images(), targets(model))  # a training-mode pass moves the batch-norm statistics off their init
    model.eval()
    data = DataRecord(spec="shapes", name="shapes", image_shape=model.config.image_shape)
    write_record(tmp_path, RunRecord(name, model.config, data, TrainConfig()))
    commit_epoch(tmp_path, model, {"epoch": 1, "step": 1}, metrics=[{"epoch": 1}])
    loaded = load_run(tmp_path).model
    x = images()
    assert type(loaded) is type(model) and loaded.config == model.config
    # the same layout as the loaded model (NHWC for conv models on the CPU), so that the same kernels run
    model.to(memory_format=memory_format(model, torch.device("cpu")))
    mine, theirs = outputs(model, x), outputs(loaded, x)
    assert mine and all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_config_json_round_trip_and_unknown_keys(name: str) -> None:
    config = make_config(name)
    assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ConfigError, match="no option"):
        type(config).from_dict({**config.to_dict(), "fc21": 3})


@pytest.mark.parametrize("name", [n for n in NAMES if getattr(make_config(n), "arch", None) == "conv"
                                  and getattr(make_config(n), "conv_padding", "same") == "same"])
def test_conv_models_reject_sizes_they_cannot_rebuild(name: str) -> None:
    with pytest.raises(ConfigError, match="divisible by 4"):
        create_model(name, image_shape=(1, 30, 30))


def test_registry_defaults_match_the_documented_architectures() -> None:
    vae = create_model("vae")
    assert [tuple(p.shape) for p in vae.parameters() if p.dim() == 2] == [(400, 784), (20, 400), (20, 400),
                                                                           (400, 20), (784, 400)]
    ae = create_model("ae")
    assert [p.shape[0] for p in ae.encoder.parameters() if p.dim() == 2] == [128, 64, 12, 3]
    conv = create_model("conv-vae")
    assert [p.shape[:2] for p in conv.encoder.parameters() if p.dim() == 4] == [(16, 1), (32, 16)]
    assert conv.mu_head.in_features == 32 * 7 * 7 and conv.latent_dim == 20


def test_unknown_model_name_teaches() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        create_model("vea")


def test_beta_weights_the_kl_term() -> None:
    x = (images(8) > 0.5).float()
    for beta in (1.0, 4.0):
        parts = create_model("vae", beta=beta).loss(x)
        assert torch.allclose(parts["loss"], parts["rec"] + beta * parts["kl"])


def test_gaussian_decoder_returns_means() -> None:
    model = create_model("vae", likelihood="gaussian", gaussian_std=0.5)
    x = images(4)
    parts = model.loss(x)
    assert torch.isfinite(parts["loss"])
    assert model.reconstruct(x).min() >= 0


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_table_reads_each_config_as_its_module_declares_it(name: str) -> None:
    """The config the command line builds flags from (read from the family module without torch) is field for
    field, rule for rule, the config class the model is built from."""
    declared, real = TABLE[name].config_cls, MODELS[name].config_cls
    assert declared is not real and declared.__name__ == real.__name__

    def described(cls) -> list:
        return [(f.name, f.type, f.default, dict(f.metadata)) for f in dataclasses.fields(cls)]
    assert described(declared) == described(real)
    fields = {f.name for f in dataclasses.fields(real)}
    probes = [{}, {"image_shape": (1, 28, 27)}, {"image_shape": (3, 30, 30)}, {"kernel_size": 4},
              {"gated": True, "batch_norm": True}, {"corruption": "mask", "corruption_level": 1.5}, {"dim": 0},
              {"conv_channels": ()}, {"latent_dim": 0}]
    outcomes = set()
    for probe in probes:
        values = {**TABLE[name].defaults, **{k: v for k, v in probe.items() if k in fields}}
        outcomes.add(outcome(declared, values))
        assert outcome(declared, values) == outcome(real, values), probe
    assert any(o.startswith("refused: ") for o in outcomes)  # some probe breaks a rule of every family


def outcome(config_cls, values: dict) -> object:
    """The config's values, or the message of the rule they break."""
    try:
        return json.dumps(config_cls.from_dict(values).to_dict())
    except ConfigError as err:
        return f"refused: {err}"


def test_a_config_that_needs_torch_to_be_declared_is_refused_with_a_reason(tmp_path, monkeypatch) -> None:
    family = tmp_path / "genlab_test_family.py"
    family.write_text("from dataclasses import dataclass\nimport torch\nfrom genlab.config import Config, option\n\n"
                      "@dataclass(frozen=True)\nclass NetConfig(Config):\n"
                      "    width: int = option(torch.iinfo(torch.int8).max, 'a default torch computes')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="could not be read without torch"):
        declared_config("genlab_test_family", "NetConfig")
