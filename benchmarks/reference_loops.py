"""Plain tutorial-style reference loops, written the way the well-known tutorials write them.

Each reference uses torchvision's FashionMNIST with ToTensor (and Resize / Normalize for the DCGAN), a
shuffling DataLoader, `.to(device)` per batch and `.item()` per step. The architectures are the same as
genlab's registered models of the same name, so that time per epoch and final losses compare.
"""
from __future__ import annotations

import copy
import gzip
import math
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genlab.data.catalog import fetch_dataset


def torchvision_root(data_dir: str | None) -> Path:
    """torchvision wants FashionMNIST/raw/<uncompressed files>: unpack genlab's copy into a temp folder."""
    source = fetch_dataset("fashion-mnist", data_dir)
    root = Path(tempfile.mkdtemp(prefix="genlab-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        packed = source / f"{stem}.gz"
        with (gzip.open(packed) if packed.exists() else open(source / stem, "rb")) as f, open(raw / stem, "wb") as g:
            shutil.copyfileobj(f, g)
    return root


class TutorialVAE(nn.Module):
    """The standard 784-400-20 tutorial VAE: sigmoid output, fc-style names as the tutorial has them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).view_as(x), mu, logvar


class TutorialConvVAE(nn.Module):
    """genlab's conv-vae written plainly: 5x5 stride-2 convs (16, 32), 20-d latent, mirrored decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 5, 2, 2), nn.Conv2d(16, 32, 5, 2, 2)
        self.fc_mu, self.fc_logvar = nn.Linear(32 * 7 * 7, 20), nn.Linear(32 * 7 * 7, 20)
        self.fc_dec = nn.Linear(20, 32 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(32, 16, 5, 2, 2, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(16, 1, 5, 2, 2, output_padding=1)

    def forward(self, x):
        h = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2).flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h = F.leaky_relu(self.fc_dec(z), 0.2).view(-1, 32, 7, 7)
        return torch.sigmoid(self.deconv2(F.leaky_relu(self.deconv1(h), 0.2))), mu, logvar


class TutorialConvVAE4x4(nn.Module):
    """genlab's conv-vae-4x4 written plainly: 4x4 stride-2 'valid' convs (32, 64) to 64x5x5, 20-d latent, transposed
    convs of kernel 5 and 4 back to 28x28 (the lecture's conv VAE)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 4, 2), nn.Conv2d(32, 64, 4, 2)
        self.fc_mu, self.fc_logvar = nn.Linear(64 * 5 * 5, 20), nn.Linear(64 * 5 * 5, 20)
        self.fc_dec = nn.Linear(20, 64 * 5 * 5)
        self.deconv1, self.deconv2 = nn.ConvTranspose2d(64, 32, 5, 2), nn.ConvTranspose2d(32, 1, 4, 2)

    def forward(self, x):
        h = F.leaky_relu(self.conv2(F.leaky_relu(self.conv1(x), 0.2)), 0.2).flatten(1)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h = F.leaky_relu(self.fc_dec(z), 0.2).view(-1, 64, 5, 5)
        return torch.sigmoid(self.deconv2(F.leaky_relu(self.deconv1(h), 0.2))), mu, logvar


class TutorialConvVAE64(nn.Module):
    """genlab's conv-vae-64 written plainly: 4x4 stride-2 convs (32, 32, 64, 64) with ReLU to 64x4x4, 256 units, a
    32-d latent, the mirror back to 64x64x3; the output is the mean of a Gaussian of standard deviation 0.1. With
    channels=1, latent=10 it is the disentanglement studies' net of beta-vae-conv64, whose output is logits."""

    def __init__(self, channels: int = 3, latent: int = 32) -> None:
        super().__init__()
        widths = (channels, 32, 32, 64, 64)
        self.encoder = nn.Sequential(*[layer for a, b in zip(widths, widths[1:])
                                       for layer in (nn.Conv2d(a, b, 4, 2, 1), nn.ReLU())],
                                     nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU())
        self.fc_mu, self.fc_logvar = nn.Linear(256, latent), nn.Linear(256, latent)
        back = widths[::-1]
        deconvs = [layer for a, b in zip(back, back[1:]) for layer in (nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU())]
        self.decoder = nn.Sequential(nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 64 * 4 * 4), nn.ReLU(),
                                     nn.Unflatten(1, (64, 4, 4)), *deconvs[:-1])

    def forward(self, x):
        h = self.encoder(x)
        mu, logvar = self.fc_mu(h), self.fc_logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decoder(z), mu, logvar


def plain_layers(module: nn.Module) -> nn.Module:
    """A copy of a genlab module as plain PyTorch runs it: torch's own transposed convolutions in place of genlab's
    (which run thin stride-2 layers through the output's phases) and plain Sequentials in place of genlab's
    DeconvStack (which runs pairs of layers as two ordinary convolutions) and ConvDecoder (whose last linear layer
    writes NHWC for NHWC weights); the same parameters and layout."""
    plain = copy.deepcopy(module)
    for inner in plain.modules():
        if isinstance(inner, nn.ConvTranspose2d):
            inner.__class__ = nn.ConvTranspose2d
        elif isinstance(inner, nn.Sequential):
            inner.__class__ = nn.Sequential
    return plain


def gaussian_vae_loss(mean, x, mu, logvar, std: float = 0.1):
    """Summed -log N(x; mean, std^2) plus the closed-form KL: nats, like genlab's Gaussian decoder."""
    nll = 0.5 * ((x - mean) / std).pow(2) + math.log(std) + 0.5 * math.log(2 * math.pi)
    return nll.sum() - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def faces_vae_epochs(args, device: torch.device) -> Iterator[tuple[float, float]]:
    """Yields (train seconds, test loss in nats per image) per epoch of a plain loop over genlab's faces: the uint8
    images in a TensorDataset, a shuffling DataLoader, float conversion and `.to(device)` per batch, `.item()` per
    step, as a loop over an in-memory array is usually written."""
    from genlab.data.catalog import load_dataset

    data = load_dataset("faces")
    train_x = data.train_x[:args.train_images] if args.train_images else data.train_x
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x), batch_size=args.batch_size,
                                        shuffle=True)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.test_x), batch_size=500)
    torch.manual_seed(args.seed)
    model = TutorialConvVAE64().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(args.epochs):
        model.train()
        start, train_loss = time.perf_counter(), 0.0
        for (batch,) in train:
            x = batch.to(device).float() / 255
            optimizer.zero_grad()
            mean, mu, logvar = model(x)
            loss = gaussian_vae_loss(mean, x, mu, logvar) / x.shape[0]
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        seconds = time.perf_counter() - start
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for (batch,) in test:
                x = batch.to(device).float() / 255
                mean, mu, logvar = model(x)
                test_loss += gaussian_vae_loss(mean, x, mu, logvar).item()
        yield seconds, test_loss / len(data.test_x)


def sprites_vae_epochs(args, device: torch.device, beta: float = 4.0) -> Iterator[tuple[float, float]]:
    """Yields (train seconds, test loss in nats per image) per epoch of a plain beta-VAE loop (beta 4, Adam 1e-4,
    as disentanglement_lib's study trains it) over genlab's `sprites`: the binary images unpacked into a uint8
    TensorDataset, a shuffling DataLoader, float conversion and `.to(device)` per batch, `.item()` per step. The
    loss is summed Bernoulli cross-entropy on logits plus beta times the closed-form KL, genlab's beta-VAE loss."""
    from genlab.data.catalog import load_dataset

    data = load_dataset("sprites")
    count = args.train_images or len(data.train_x)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train_x[:count]),
                                        batch_size=args.batch_size, shuffle=True)
    test = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.test_x[:]), batch_size=500)
    torch.manual_seed(args.seed)
    model = TutorialConvVAE64(channels=1, latent=10).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def loss_sum(x):
        logits, mu, logvar = model(x)
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") + beta * kl

    for _ in range(args.epochs):
        model.train()
        start = time.perf_counter()
        for (batch,) in train:
            x = batch.to(device).float() / 255
            optimizer.zero_grad()
            loss = loss_sum(x) / x.shape[0]
            loss.backward()
            loss.item()
            optimizer.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            test_loss = sum(loss_sum(batch.to(device).float() / 255).item() for (batch,) in test)
        yield seconds, test_loss / len(test.dataset)


def vae_loss(recon, x, mu, logvar):
    """The tutorial's loss: summed binary cross-entropy on sigmoid outputs plus the closed-form KL."""
    bce = F.binary_cross_entropy(recon, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def loaders(args, transform, root: Path):
    from torchvision import datasets  # only the references need torchvision

    train_set = datasets.FashionMNIST(root, train=True, download=False, transform=transform)
    if args.train_images:
        train_set = torch.utils.data.Subset(train_set, range(args.train_images))
    test_set = datasets.FashionMNIST(root, train=False, download=False, transform=transform)
    return (torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True),
            torch.utils.data.DataLoader(test_set, batch_size=args.batch_size, shuffle=False), len(test_set))


def vae_epochs(args, device: torch.device) -> Iterator[tuple[float, float]]:
    """Yields (train seconds, test loss in nats per image) per epoch of the tutorial VAE loop."""
    from torchvision import transforms

    root = torchvision_root(args.data_dir)
    train_loader, test_loader, n_test = loaders(args, transforms.ToTensor(), root)
    torch.manual_seed(args.seed)
    model = {"vae": TutorialVAE, "conv-vae": TutorialConvVAE, "conv-vae-4x4": TutorialConvVAE4x4}[args.model]()
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    try:
        for _ in range(args.epochs):
            model.train()
            start, train_loss = time.perf_counter(), 0.0
            for data, _ in train_loader:
                data = data.to(device)
                optimizer.zero_grad()
                recon, mu, logvar = model(data)
                loss = vae_loss(recon, data, mu, logvar)
                loss.backward()
                train_loss += loss.item()
                optimizer.step()
            seconds = time.perf_counter() - start
            model.eval()
            test_loss = 0.0
            with torch.no_grad():
                for data, _ in test_loader:
                    data = data.to(device)
                    recon, mu, logvar = model(data)
                    test_loss += vae_loss(recon, data, mu, logvar).item()
            yield seconds, test_loss / n_test
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tutorial_generator(nz: int = 100, ngf: int = 64, nc: int = 1) -> nn.Sequential:
    """The DCGAN tutorial's 64x64 generator: z -> 4x4x512 -> ... -> 64x64, tanh."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def tutorial_discriminator(ndf: int = 64, nc: int = 1) -> nn.Sequential:
    """The DCGAN tutorial's 64x64 discriminator: strided convs, leaky ReLU, a sigmoid probability."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())


def generator_28(nz: int = 100, ngf: int = 64, nc: int = 1) -> nn.Sequential:
    """The same tutorial generator for 28x28 images: z -> 4x4 -> 7x7 (3x3 kernel) -> 14x14 -> 28x28, tanh."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def discriminator_28(ndf: int = 64, nc: int = 1) -> nn.Sequential:
    """Its mirror: 28x28 -> 14x14 -> 7x7 -> 4x4 (3x3 kernel) -> a sigmoid probability."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 3, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())


def weights_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def dcgan_epochs(args, device: torch.device) -> Iterator[tuple[float, float]]:
    """Yields (train seconds, mean D loss + G loss) per epoch of the DCGAN tutorial loop at 64x64 (model "dcgan"),
    or of the same loop on 28x28 Fashion-MNIST with the 28-pixel networks (model "dcgan-28")."""
    from torchvision import transforms

    root = torchvision_root(args.data_dir)
    small = args.model == "dcgan-28"
    transform = transforms.Compose(([] if small else [transforms.Resize(64)])
                                   + [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_loader, _, _ = loaders(args, transform, root)
    torch.manual_seed(args.seed)
    netG, netD = (generator_28(), discriminator_28()) if small else (tutorial_generator(), tutorial_discriminator())
    netG, netD = netG.to(device), netD.to(device)
    netG.apply(weights_init)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    try:
        for _ in range(args.epochs):
            start, errD_sum, errG_sum, steps = time.perf_counter(), 0.0, 0.0, 0
            for data, _ in train_loader:
                real = data.to(device)
                b = real.size(0)
                netD.zero_grad()
                errD_real = criterion(netD(real).view(-1), torch.full((b,), 1.0, device=device))
                errD_real.backward()
                fake = netG(torch.randn(b, 100, 1, 1, device=device))
                errD_fake = criterion(netD(fake.detach()).view(-1), torch.full((b,), 0.0, device=device))
                errD_fake.backward()
                optD.step()
                netG.zero_grad()
                errG = criterion(netD(fake).view(-1), torch.full((b,), 1.0, device=device))
                errG.backward()
                optG.step()
                errD_sum += (errD_real + errD_fake).item()  # the tutorial logs these every step
                errG_sum += errG.item()
                steps += 1
            yield time.perf_counter() - start, (errD_sum + errG_sum) / steps
    finally:
        shutil.rmtree(root, ignore_errors=True)
