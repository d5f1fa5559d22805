"""`NetworkConfig`: every size of the hybrid CNN in one frozen, JSON-serialisable object.

The defaults are the network of Guiglion, Nepal et al. (2024, Sect. 3.1): three 1-d
convolutions (32, 16, 8 filters, kernel 8 pixels) with max-pooling after the 2nd and
3rd, a 128-neuron dense layer on the RVS branch, 32 neurons on G/BP/RP/parallax, 64 on
the 110 XP coefficients, then 128 -> 32 -> 5 fully connected neurons, LeakyReLU
activations, Adam on the mean squared error of min-max-scaled labels.

The paper does not state the max-pooling size; 4 keeps a member at ~0.2 M parameters
(about 0.8 MB on disk). The RVS-only network of the paper's Appendix B is
``NetworkConfig(inputs=("rvs",))``.

Examples
--------
>>> from gaiarvs_cnn.model import NetworkConfig
>>> cfg = NetworkConfig(inputs=("rvs",))
>>> NetworkConfig.from_json(cfg.to_json()) == cfg
True
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..constants import (
    INPUT_NAMES,
    LABELS,
    PHOT_INPUTS,
    RVS_NPIX,
    RVS_WAVE_START,
    RVS_WAVE_STEP,
    XP_NCOEFF,
)
from ..exceptions import InputDataError

__all__ = ["NetworkConfig", "INPUT_NAMES", "PAPER_CONFIG"]


@dataclass(frozen=True)
class NetworkConfig:
    """Architecture and training hyper-parameters of one hybrid CNN member.

    All parameters are also available as attributes of the (frozen) instance.

    Parameters
    ----------
    inputs : tuple of str
        Which branches to build, a subset of ``("rvs", "phot", "xp")``.
    n_pixels : int
        Pixels of the RVS input spectrum.
    wave_start_nm, wave_step_nm : float
        Wavelength (nm, vacuum) of the first pixel and the pixel step of the grid the
        network is trained on. Input spectra are validated against (and cropped to) it.
    conv_filters : tuple of int
        Filters of each 1-d convolution, in order.
    kernel_size : int
        Convolution kernel size (pixels).
    pool_after : tuple of int
        1-based indices of the convolutions followed by max-pooling.
    pool_size : int
        Max-pooling size (pixels).
    rvs_dense, phot_dense, xp_dense : int
        Width of the dense layer closing each branch.
    head_dense : tuple of int
        Widths of the dense layers after the concatenation (the output layer excluded).
    n_phot, n_xp : int
        Number of photometric/astrometric inputs and of XP coefficients.
    labels : tuple of str
        Output labels, in order (the store's `~gaiarvs_cnn.constants.LABELS`).
    leaky_slope : float
        Negative slope of the LeakyReLU activations.
    learning_rate : float
        Initial Adam learning rate.
    batch_size : int
        Training mini-batch size.
    patience : int
        EarlyStopping patience (epochs) on the validation loss; best weights restored.
    lr_patience : int
        ReduceLROnPlateau patience (epochs).
    lr_factor : float
        ReduceLROnPlateau factor.
    min_lr : float
        ReduceLROnPlateau lower bound.
    jit_compile : bool
        Compile training and prediction steps with XLA (measured slower on CPU, see
        ``benchmarks/bench_model.py``; useful on GPUs).

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If the configuration is unusable (see `validate`).
    """

    inputs: tuple[str, ...] = INPUT_NAMES
    n_pixels: int = RVS_NPIX
    wave_start_nm: float = float(RVS_WAVE_START.value)
    wave_step_nm: float = float(RVS_WAVE_STEP.value)
    conv_filters: tuple[int, ...] = (32, 16, 8)
    kernel_size: int = 8
    pool_after: tuple[int, ...] = (2, 3)
    pool_size: int = 4
    rvs_dense: int = 128
    phot_dense: int = 32
    xp_dense: int = 64
    head_dense: tuple[int, ...] = (128, 32)
    n_phot: int = len(PHOT_INPUTS)
    n_xp: int = 2 * XP_NCOEFF
    labels: tuple[str, ...] = LABELS
    leaky_slope: float = 0.3
    learning_rate: float = 1e-3
    batch_size: int = 64
    patience: int = 20
    lr_patience: int = 8
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    jit_compile: bool = False

    def __post_init__(self):
        for name in ("inputs", "conv_filters", "pool_after", "head_dense", "labels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Raise `~gaiarvs_cnn.exceptions.InputDataError` if the configuration is unusable."""
        bad = [i for i in self.inputs if i not in INPUT_NAMES]
        if bad or not self.inputs or len(set(self.inputs)) != len(self.inputs):
            raise InputDataError(f"NetworkConfig.inputs={self.inputs!r}: use a non-empty "
                                 f"subset of {INPUT_NAMES}.")
        if any(p < 1 or p > len(self.conv_filters) for p in self.pool_after):
            raise InputDataError(f"NetworkConfig.pool_after={self.pool_after} refers to a "
                                 f"convolution beyond the {len(self.conv_filters)} defined.")
        if "rvs" in self.inputs and self.rvs_length_after_convolutions() < 1:
            raise InputDataError(
                f"NetworkConfig: {self.n_pixels} pixels are too few for "
                f"{len(self.conv_filters)} convolutions of kernel {self.kernel_size} "
                f"with pooling {self.pool_size} after {self.pool_after}.")
        if self.labels != LABELS:
            raise InputDataError(f"NetworkConfig.labels={self.labels}: the network predicts "
                                 f"the store's five labels {LABELS}, in that order.")

    def _conv_walk(self) -> tuple[list[tuple[int, int, int]], int, int]:
        """Each convolution's ``(pixels, channels, filters)`` and the final (pixels, channels)."""
        layers, n, c = [], self.n_pixels, 1
        for i, f in enumerate(self.conv_filters, start=1):
            layers.append((n, c, f))
            n -= self.kernel_size - 1
            c = f
            if i in self.pool_after:
                n //= self.pool_size
        return layers, n, c

    def conv_layers(self) -> list[tuple[int, int, int]]:
        """Shape of each RVS convolution: ``(input pixels, input channels, filters)``.

        Returns
        -------
        list of tuple of int
            One entry per convolution, in order; a convolution's output has
            ``pixels - kernel_size + 1`` pixels, divided by ``pool_size`` (floor) when a
            max-pooling follows it.
        """
        return self._conv_walk()[0]

    def rvs_length_after_convolutions(self) -> int:
        """Length (pixels) of the RVS feature map entering the branch's dense layer.

        Returns
        -------
        int
            Number of pixels left after the convolutions and poolings.
        """
        return self._conv_walk()[1]

    def wavelength_nm(self) -> np.ndarray:
        """Wavelength grid (nm) of the RVS input, shape ``(n_pixels,)``.

        Returns
        -------
        numpy.ndarray
            Vacuum wavelength of each input pixel (nm), shape ``(n_pixels,)``.
        """
        return self.wave_start_nm + self.wave_step_nm * np.arange(self.n_pixels)

    def flops_per_star(self) -> int:
        """Floating-point operations (multiply + add = 2) of one forward pass of one member.

        Returns
        -------
        int
            FLOPs per star of the convolution and dense layers (activations and
            pooling are not counted).
        """
        flops = 0
        merged = 0
        if "rvs" in self.inputs:
            layers, n_out, c_out = self._conv_walk()
            for n, c, f in layers:
                flops += 2 * (n - self.kernel_size + 1) * self.kernel_size * c * f
            flops += 2 * n_out * c_out * self.rvs_dense
            merged += self.rvs_dense
        if "phot" in self.inputs:
            flops += 2 * self.n_phot * self.phot_dense
            merged += self.phot_dense
        if "xp" in self.inputs:
            flops += 2 * self.n_xp * self.xp_dense
            merged += self.xp_dense
        for width in (*self.head_dense, len(self.labels)):
            flops += 2 * merged * width
            merged = width
        return int(flops)

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain-JSON dict of every field.

        Returns
        -------
        dict
            Field name to value; tuples are converted to lists.
        """
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping) -> NetworkConfig:
        """Build from `to_dict` output; unknown keys raise `InputDataError`.

        Parameters
        ----------
        d : Mapping
            Field name to value, as written by `to_dict`; missing fields take defaults.

        Returns
        -------
        NetworkConfig
            The validated configuration.

        Raises
        ------
        gaiarvs_cnn.exceptions.InputDataError
            If ``d`` holds unknown keys or the configuration is unusable.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise InputDataError(f"Unknown NetworkConfig field(s) {unknown}; known: "
                                 f"{sorted(names)}.")
        return cls(**dict(d))

    def to_json(self) -> str:
        """Serialise to a JSON string.

        Returns
        -------
        str
            JSON of `to_dict`, indented by one space.
        """
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> NetworkConfig:
        """Build from a JSON string written by `to_json`.

        Parameters
        ----------
        text : str
            JSON object of field names and values.

        Returns
        -------
        NetworkConfig
            The validated configuration.

        Raises
        ------
        gaiarvs_cnn.exceptions.InputDataError
            If the JSON holds unknown fields or the configuration is unusable.
        """
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> NetworkConfig:
        """Return a copy with ``changes`` applied.

        Parameters
        ----------
        **changes
            Field names and their new values.

        Returns
        -------
        NetworkConfig
            A new, validated configuration; ``self`` is unchanged.

        Raises
        ------
        gaiarvs_cnn.exceptions.InputDataError
            If the changed configuration is unusable.
        """
        return dataclasses.replace(self, **changes)


#: The network of the paper (Sect. 3.1): ``NetworkConfig()``.
PAPER_CONFIG = NetworkConfig()
