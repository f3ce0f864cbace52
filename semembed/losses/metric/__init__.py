"""Deep metric learning losses, split as pytorch-metric-learning does: distances, (miners, reducers,) losses.

Every loss here sees whatever batch it is given; under several replicas a task
passes it the *global* batch from :meth:`semembed.training.step.StepContext.gather`.
"""

from semembed.losses.metric.contrastive import ContrastiveLoss, contrastive_loss
from semembed.losses.metric.distances import cosine_similarity, euclidean_distance

__all__ = ["ContrastiveLoss", "contrastive_loss", "cosine_similarity", "euclidean_distance"]
