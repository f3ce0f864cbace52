"""Weak-shot learning (SimTrans, Chen et al., NeurIPS 2021; WEAKSHOT.md): similarity transfer to sample weights.

* :mod:`semembed.weakshot.weights` — the weight formulas (row / row-and-column means, class mean 1);
* :mod:`semembed.weakshot.transfer` — a SimNet's similarities per novel class, memory-bounded → weights;
* :mod:`semembed.weakshot.report` — the weights CSV (path, class, weight) and one PNG per class;
* :mod:`semembed.weakshot.simnet_training` — ``learn_simnet`` as a library call;
* :mod:`semembed.weakshot.config` — the defaults.

The SimNet model is :mod:`semembed.models.simnet`, its training task
:mod:`semembed.training.tasks.simnet`, the graph regulariser
:mod:`semembed.training.tasks.graph` and its loss :mod:`semembed.losses.denoising`.
"""
