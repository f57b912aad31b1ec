"""The policies ``--fast`` builds: SB3's Nature-CNN under bf16 autocast and/or channels_last.

Why each lever (measured in ``0_setup/0.2_benchmark.py``, README "Performance"):

* **bf16 autocast** inside the features extractor: on CPUs with AVX-512-BF16 or AMX
  (and on CUDA GPUs) the Nature-CNN's convolutions run about twice as fast in bf16.
  The extractor returns float32, because SB3's rollout buffer and losses reject bf16,
  and only the extractor is autocast: the small heads, the losses and Adam stay float32.
* **uint8 images straight to bf16** (:class:`MixedPrecisionCnnPolicy`): SB3 makes each
  uint8 minibatch float32, divides it by 255, and autocast copies it to bf16 again;
  scaling the uint8 batch into bf16 in one pass gives the same values for less work
  (SB3 ``--fast`` 8,192 steps, alternating, medians of 3: 501 -> 599 env steps/s).
* **channels_last** (NHWC) conv weights and batches: cuDNN's bf16 kernels want them; on
  one CPU oneDNN gained from them, on another converting each batch cost more than it saved.
* **torch.compile of the training step**: :class:`MixedPrecisionCnnPolicy` compiles
  ``evaluate_actions`` (and so its backward) when ``compile_training`` is set.

Which of them a run gets is measured (:mod:`rlbreakout.speed.measure`) and chosen
(:mod:`rlbreakout.speed.fast`). bf16 numerics: the extractor's outputs agree with fp32 about
as closely as bf16 rounding of the weights allows; that is not proof that learning is
unchanged, which is why the benchmark's README section reports same-seed parity runs.

Saved models name these classes by import path; models saved before the speed wing existed
name ``rlbreakout.fast`` and still load through :mod:`rlbreakout.old_paths`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from rlbreakout.errors import ConfigError
from rlbreakout.speed.hardware import FUSED_ADAM_DEVICES, PRECISION_CHOICES, device_type

#: uint8 pixel values run 0..255; images are divided by this to lie in [0, 1], as SB3 does.
PIXEL_MAX = 255.0
#: The Adam epsilon SB3's policies use for Atari PPO (torch's default is 1e-8).
SB3_ADAM_EPS = 1e-5


class BF16NatureCNN(NatureCNN):
    """SB3's Nature-CNN under bf16 autocast and/or channels_last; same parameters as NatureCNN.

    Use it through :func:`cnn_policy_kwargs`, which also passes ``net_arch=[]``: SB3
    gives the plain Nature-CNN policy (no hidden MLP) only when the extractor class is
    *exactly* ``NatureCNN``; a subclass would silently get two 64-64 tanh heads.
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 512, normalized_image: bool = False, *,
                 bf16: bool = True, channels_last: bool = True) -> None:
        super().__init__(observation_space, features_dim, normalized_image)
        self.bf16 = bool(bf16)
        self.channels_last = bool(channels_last)
        self._weights_channels_last = False

    def _convert_weights(self) -> None:
        """Switch conv weights to channels_last, in place (the Parameter objects, and so the
        optimizer's references to them, stay the same).

        Done at the first forward, not in ``__init__``: SB3 initialises the weights after
        building the extractor, and its orthogonal init cannot write into channels_last
        tensors. Only 4-d tensors change layout; the flattened features keep NCHW order,
        so the weights stay interchangeable with the stock extractor's.
        """
        self.to(memory_format=torch.channels_last)
        self._weights_channels_last = True

    def prepare_layout(self) -> None:
        """Convert the conv weights to channels_last now, if this extractor uses that layout and has
        not yet: before torch.compile traces it (replacing Parameters cannot be traced)."""
        if self.channels_last and not self._weights_channels_last:
            self._convert_weights()

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Features of ``observations`` as float32.

        uint8 images (what :class:`MixedPrecisionCnnPolicy` hands over) are scaled to [0, 1]
        here, straight into the dtype the convolutions run in: one pass over the batch
        instead of SB3's three (to float32, divide by 255, autocast's copy to bf16), with
        the same values (the tests compare the two paths).
        """
        x = observations
        use_bf16 = self.bf16
        if x.dtype == torch.uint8:
            x = x.to(torch.bfloat16 if use_bf16 else torch.float32).div_(PIXEL_MAX)
        if self.channels_last and x.dim() == 4:
            self.prepare_layout()
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            features = super().forward(x)
        return features.float()


class MixedPrecisionCnnPolicy(ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` that lets :class:`BF16NatureCNN` scale uint8 images itself.

    Stock SB3 turns each uint8 batch into float32 / 255 before the extractor, and autocast
    then copies it to bf16 again: three passes over every 256 x 4 x 84 x 84 minibatch, about
    a tenth of each ``--fast`` iteration here (0.21 of 2.0 s under cProfile). This policy hands
    the uint8 images over unscaled. Same parameters, same outputs (see the tests); any other
    case takes SB3's own path.

    ``compile_training=True`` runs :meth:`evaluate_actions`, the forward pass of PPO's update,
    through ``torch.compile`` (compiled at its first call, the run's first update); acting
    and evaluation stay eager. SB3 keeps the flag in a saved model's ``policy_kwargs``, so a
    resumed run compiles again; a policy saved alone (``policy.save``) loads eager.
    """

    def __init__(self, *args: Any, compile_training: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compile_training = bool(compile_training)
        self._compiled_evaluate_actions: Callable[..., Any] | None = None
        # Decided once: SB3's is_image_space branches on numpy bounds, which torch.compile cannot trace.
        self._image_observations = (isinstance(self.observation_space, gym.spaces.Box)
                                    and is_image_space(self.observation_space))

    def evaluate_actions(  # type: ignore[override]
        self, obs: Any, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.compile_training:
            return super().evaluate_actions(obs, actions)
        if self._compiled_evaluate_actions is None:
            for extractor in {self.features_extractor, self.pi_features_extractor, self.vf_features_extractor}:
                if isinstance(extractor, BF16NatureCNN):
                    extractor.prepare_layout()
            self._compiled_evaluate_actions = torch.compile(super().evaluate_actions)
        return self._compiled_evaluate_actions(obs, actions)

    def extract_features(  # type: ignore[override]
        self, obs: Any, features_extractor: BaseFeaturesExtractor | None = None
    ) -> Any:
        extractor = self.features_extractor if features_extractor is None else features_extractor
        if self.share_features_extractor and self._scales_images_itself(obs, extractor):
            return extractor(obs)
        return super().extract_features(obs, features_extractor)

    def _scales_images_itself(self, obs: Any, extractor: BaseFeaturesExtractor) -> bool:
        return (self.normalize_images and self._image_observations and isinstance(extractor, BF16NatureCNN)
                and isinstance(obs, torch.Tensor) and obs.dtype == torch.uint8)


def policy_class(policy_kwargs: Mapping[str, Any]) -> type[ActorCriticCnnPolicy] | str:
    """The PPO policy for ``policy_kwargs``: :class:`MixedPrecisionCnnPolicy` for the
    mixed-precision extractor or a compiled training step, else SB3's ``"CnnPolicy"`` (so
    stock runs stay stock)."""
    if policy_kwargs.get("compile_training"):
        return MixedPrecisionCnnPolicy
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, type) and issubclass(extractor, BF16NatureCNN):
        return MixedPrecisionCnnPolicy
    return "CnnPolicy"


def cnn_policy_kwargs(precision: str, *, channels_last: bool = False, compile_training: bool = False) -> dict[str, Any]:
    """``policy_kwargs`` for PPO's CNN policy with the same parameter shapes as stock.

    :param precision: ``bf16`` or ``fp32`` (pass it through :func:`~rlbreakout.speed.hardware.resolve_precision` first)
    :param channels_last: NHWC weights and batches; ``fp32`` without it (or compile) returns ``{}`` (stock SB3)
    :param compile_training: ``torch.compile`` the update's forward (see :class:`MixedPrecisionCnnPolicy`)
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    if precision == "fp32" and not channels_last and not compile_training:
        return {}
    kwargs = {"features_extractor_class": BF16NatureCNN,
              "features_extractor_kwargs": {"bf16": precision == "bf16", "channels_last": bool(channels_last)},
              "net_arch": []}  # what SB3 gives exactly-NatureCNN; see BF16NatureCNN
    if compile_training:
        kwargs["compile_training"] = True
    return kwargs


def run_policy_kwargs(levers: Mapping[str, Any], device: str | torch.device, fused_adam: bool) -> dict[str, Any]:
    """``policy_kwargs`` for a run with ``levers`` on ``device`` (fused Adam where the device has it)."""
    kwargs = cnn_policy_kwargs(levers["precision"], channels_last=bool(levers["channels_last"]),
                               compile_training=bool(levers.get("compile", False)))
    if fused_adam and device_type(device) in FUSED_ADAM_DEVICES:
        # One fused kernel per Adam step instead of a dozen small ops per tensor; same update rule.
        # SB3 passes eps=1e-5 only when optimizer_kwargs is left out, so it is repeated here.
        kwargs["optimizer_kwargs"] = {"eps": SB3_ADAM_EPS, "fused": True}
    return kwargs

