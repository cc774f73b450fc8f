"""Light regimes: one learnt reference per regime (day, dusk, night, infrared), each following its drift.

A scene looks different at noon, at dusk, at night under a weak lamp and in the camera's infrared
night mode (gray, other textures). Judging a night frame against the noon reference calls a dim
corridor "dark"; judging it against an absolute floor does the same. So the guard keeps a
reference per regime, learnt from frames that matched an existing reference structurally (a
covered lens never matches, so it is never learnt), and judges each frame against the reference
of its own regime, or, until that one is learnt, against the nearest learnt one.

The regime of a frame is read from its mean brightness (bands from the config) and, once the
camera has delivered colour at least once, from its colour: a colour camera's gray picture is its
infrared mode. A camera that never shows colour has no infrared regime of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import cv2
import numpy as np

from lockerd.camera.frames import Gray
from lockerd.camera.reference import Reference, make_reference

REBUILD_ALPHA = 0.01
"""Rebuild a drifting reference once this much of the new light has been blended in (the blend
itself is cheap; recomputing what comparisons need is not worth doing every sample)."""


class Regime(StrEnum):
    """Light regime of a frame."""

    DAY = "day"
    DUSK = "dusk"
    NIGHT = "night"
    IR = "ir"


@dataclass(frozen=True, slots=True)
class Bands:
    """Where the regimes begin (from the [camera] config)."""

    dusk_below: float = 90.0     # mean gray below this: dusk
    night_below: float = 40.0    # mean gray below this: night
    ir_chroma_max: float = 3.0   # mean channel spread at or below this (colour camera): infrared


@dataclass(slots=True)
class _Slot:
    ref: Reference
    pending: Gray            # the reference image with drift blended in since the last rebuild
    pending_alpha: float = 0.0


@dataclass(slots=True)
class RegimeBank:
    """The learnt references by regime, and the colour memory that tells infrared apart."""

    bands: Bands = field(default_factory=Bands)
    colour_seen: bool = False
    _slots: dict[Regime, _Slot] = field(default_factory=dict)

    def regime_of(self, brightness: float, chroma: float | None) -> Regime:
        """The regime a frame with this mean gray and colour spread belongs to."""
        if chroma is not None and chroma > self.bands.ir_chroma_max:
            self.colour_seen = True
        elif chroma is not None and self.colour_seen:
            return Regime.IR
        if brightness < self.bands.night_below:
            return Regime.NIGHT
        if brightness < self.bands.dusk_below:
            return Regime.DUSK
        return Regime.DAY

    @property
    def learnt(self) -> list[Regime]:
        """Regimes with a reference, in the enum's order."""
        return [r for r in Regime if r in self._slots]

    def get(self, regime: Regime) -> Reference | None:
        """The reference of one regime, if learnt."""
        slot = self._slots.get(regime)
        return None if slot is None else slot.ref

    def pick(self, regime: Regime, brightness: float) -> tuple[Regime, Reference] | None:
        """The reference to judge a frame of `regime` against: its own, else the learnt one nearest
        in brightness (infrared and colour regimes prefer their own kind)."""
        own = self._slots.get(regime)
        if own is not None:
            return regime, own.ref
        if not self._slots:
            return None

        def distance(r: Regime) -> float:
            kind = 0.0 if (r is Regime.IR) == (regime is Regime.IR) else 10.0
            level = self._slots[r].ref.stats.brightness
            return kind + abs(math.log((brightness + 1.0) / (level + 1.0)))

        best = min(self._slots, key=distance)
        return best, self._slots[best].ref

    def learn(self, regime: Regime, gray: Gray) -> Reference:
        """Set a regime's reference from an image of the empty scene (aligned to the others)."""
        ref = make_reference(gray)
        self._slots[regime] = _Slot(ref, ref.gray.copy())
        return ref

    def drift(self, regime: Regime, gray: Gray, alpha: float) -> None:
        """Blend an aligned frame of the empty scene into its regime's reference by `alpha`."""
        slot = self._slots.get(regime)
        a = float(np.clip(alpha, 0.0, 1.0))
        if slot is None or a <= 0.0:
            return
        slot.pending = np.asarray(cv2.addWeighted(slot.pending, 1.0 - a, gray, a, 0.0), np.float32)
        slot.pending_alpha += a
        if slot.pending_alpha >= REBUILD_ALPHA:
            slot.ref = make_reference(slot.pending)
            slot.pending_alpha = 0.0
