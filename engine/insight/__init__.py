"""Insight views' engine half: what initialization and regularization do to the model itself.

One concept per module, each Qt-free and tested headless; the window's views call them
and only display the arrays they return.

| module | for the view |
|---|---|
| :mod:`engine.insight.colors` | class colours and the diverging colour map shared by the pictures |
| :mod:`engine.insight.boundary` | decision boundary of 2-D data (probabilities over a grid, RGBA picture, per-unit maps) |
| :mod:`engine.insight.weights` | first-layer weights as pictures, weight histogram, network diagram |
| :mod:`engine.insight.layers` | per-layer activation and gradient statistics on a fixed batch |
| :mod:`engine.insight.depthlab` | activation std and gradient norm by layer of a deep untrained network |
| :mod:`engine.insight.confusion` | confusion matrix and the members of one cell |
| :mod:`engine.insight.landscape` | loss along filter-normalized random directions (1-D and 2-D slices) |
| :mod:`engine.insight.normalize_demo` | cost contours and gradient-descent paths, raw vs standardized inputs |
| :mod:`engine.insight.hints` | one-line readings of per-layer numbers (vanishing, exploding, dead units) |

The gradient check the window runs in the background is :func:`engine.gradcheck.check_network`;
the weight-decay factor is :func:`engine.regularization.weight_decay_factor`.
"""
