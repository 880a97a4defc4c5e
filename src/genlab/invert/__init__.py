"""CNN inversion: the image is the parameter. Class visualization, DeepDream, style transfer (Gatys et al.).

The methods (ascent, robust, style) take the network as a plain function of images (N, C, H, W) in [0, 1] and
return new images in [0, 1]; the network's weights are never changed. networks.py loads the CNNs genlab turns
around (efficientnet.py, vgg.py, classifier runs), measured.py runs each method on one with the numbers that judge
it and draws its labelled figure, and actions.py runs `genlab invert` from the options declared, without torch, in
genlab.options.

This package imports nothing itself, so that importing genlab.invert costs nothing: import the module you need.
"""
