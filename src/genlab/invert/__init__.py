"""CNN inversion: the image is the parameter. Class visualization, DeepDream, style transfer (Gatys et al.).

Every function takes the network as a plain function of images (N, C, H, W) in [0, 1] (see
genlab.invert_models.Network for the ones genlab can load) and returns new images in [0, 1];
the network's weights are never changed.
"""
from genlab.invert.ascent import (
    Objective,
    OnStep,
    activation_norm,
    ascent_step,
    check_ascent,
    class_probabilities,
    class_visualization,
    cosine_decay,
    deep_dream,
    dream_objective,
    gaussian_blur,
    noise_images,
    octave_sizes,
    progress_bar,
    random_shift,
    resize,
    rms_normalised,
    roll,
    unroll,
)
from genlab.invert.robust import FourierImage, Transforms, random_views, robust_class_visualization
from genlab.invert.style import (
    Features,
    StyleResult,
    StyleTargets,
    gram,
    style_losses,
    style_targets,
    style_transfer,
    total_variation,
)

__all__ = [
    "Features", "FourierImage", "Objective", "OnStep", "StyleResult", "StyleTargets", "Transforms",
    "activation_norm", "ascent_step", "check_ascent", "class_probabilities", "class_visualization", "cosine_decay",
    "deep_dream", "dream_objective", "gaussian_blur", "gram", "noise_images", "octave_sizes", "progress_bar",
    "random_shift", "random_views", "resize", "rms_normalised", "robust_class_visualization", "roll", "style_losses",
    "style_targets", "style_transfer", "total_variation", "unroll",
]
