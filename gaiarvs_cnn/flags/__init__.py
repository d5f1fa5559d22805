"""The eight-digit ``flag_boundary`` (paper Sect. 5): the boundary digits and the t-SNE reference.

`gaiarvs_cnn.flags.boundary` builds and decodes the digits; `gaiarvs_cnn.flags.tsne` holds
the t-SNE reference of digit 8 (stored in each model bundle).
"""
from .boundary import FLAG_POSITIONS, GOOD_FLAG, decode_flag, flag_boundary, flag_digits
from .tsne import DEFAULT_PERPLEXITIES, TSNEReference, estimate_noise, joint_training_like

__all__ = ["FLAG_POSITIONS", "GOOD_FLAG", "DEFAULT_PERPLEXITIES", "TSNEReference",
           "flag_boundary", "flag_digits", "joint_training_like", "decode_flag",
           "estimate_noise"]
