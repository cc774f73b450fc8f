"""Per-sample judgement with the state it needs: regime references, previous frame, stillness, learning."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from lockerd.camera.analysis import (
    Scores,
    Thresholds,
    Verdict,
    blinded,
    changed_share,
    decide,
    score,
    tile_change,
)
from lockerd.camera.frames import Gray, Prepared, blur, frame_stats, prepare_frame
from lockerd.camera.order import median
from lockerd.camera.reference import Reference
from lockerd.camera.regimes import Bands, Regime, RegimeBank
from lockerd.camera.registration import Bounds
from lockerd.config import Camera as CameraConfig

log = logging.getLogger(__name__)

# A scene is learnt only when part of it has structure well above the sensor noise: a uniform
# cloth in front of the lens at start-up must not become "the empty scene".
_LEARN_TEXTURED_SHARE = 0.02
_LEARN_NOISE_FACTOR = 3.0
_LEARN_MIN_CONTRAST = 1.0

PASSING_CHECKS = frozenset({"tiles_flattened", "tiles_lost", "moved", "similarity", "contrast"})
"""Verdicts a passer-by can cause (something large and near in front of part of the view); the
light (black, darker than the regime), uniformity, defocus and saturation are not deferred."""
PASSING_MOVING = 0.25
"""A frame is passing when at least this share of its lost tiles changed since the previous sample,
and the previous sample's did too: the region that hides the scene keeps changing, as a person
walking, swaying or gesturing does, while a cover stays put relative to the lens."""
STEP_RATIO = 0.5
"""A sample at or below this share of the last good sample's mean gray, right after it, is a step
down: light falls over minutes (dusk) and auto exposure works against it, while a cover arrives
between two samples. Until a good sample or the light returns, the scene is taken to be lit as it
was before the step, so the `noise_only` rule is not silenced by the cover's own darkness (a dark
cloth in front of a smooth scene looks, from one frame, like light falling). Set a priori: half the
light gone within one sample period is no dusk."""
MOVED_CHANGED = 0.75
"""A camera that turns moves every textured part of the view: a movement beyond the bounds
(`moved`) is believed only when at least this share of the scene's textured tiles changed beyond
the noise since the last good sample. Otherwise the fit followed something in front of a scene
that stayed where it was (a person close to the lens over a repetitive texture), and the frame is
judged as if no movement had been found (the tile and similarity rules still apply). Read against
the last good sample, not the previous one, so a camera turned slowly, a little per sample, or
left turned is judged on the whole way it moved. Set a priori: a turn leaves few textured tiles
unchanged, a person in front many."""
QUIET_RISE = 1.02
"""The noise of a static view (mean absolute change between two good samples) may rise by at most
this factor per good sample: good samples can change a lot (a crowd of look-alike content, people
passing), and a noise estimate following them would hide a turn. 2 % per sample is 10 % per second
at 5 Hz, well ahead of any sensor gain following falling light."""
HOLD_UNCHANGED_MIN = 0.25
"""The sample something arrived in (see `_hold`) is held only when at least a quarter of the view's
tiles still show the learnt scene as it is (within the noise): a passer-by hides part of the view
and leaves the rest as it was, wherever they jumped since the sample before; a cover, tape or
spray over the whole view, a cap or a turned camera leave none of it. Set a priori from that
geometry (a person close to the lens hides up to about half the view), not from the bench."""
PASSING_MAX_S = 4.0
"""Deferral ends after this long: a person standing close for a few seconds keeps intake open, a
cloth waved in front of the lens closes it after PASSING_MAX_S plus the gate's bad hold."""


def thresholds_from(cfg: CameraConfig) -> Thresholds:
    """Analysis thresholds from the [camera] section."""
    return Thresholds(
        dark_brightness=cfg.dark_brightness, dark_ratio=cfg.dark_ratio, covered_std=cfg.covered_std,
        covered_entropy=cfg.covered_entropy, covered_lost=cfg.covered_lost,
        redirected_lost=cfg.redirected_lost,
        saturated_fraction=cfg.saturated_fraction, blinded_brightness=cfg.blinded_brightness,
        sharpness_ratio_min=cfg.sharpness_ratio_min, edge_ratio_min=cfg.edge_ratio_min,
        contrast_ratio_min=cfg.contrast_ratio_min, similarity_min=cfg.similarity_min,
        tile_similarity_min=cfg.tile_similarity_min, frozen_diff=cfg.frozen_diff)


def bounds_from(cfg: CameraConfig) -> Bounds:
    """Registration bounds from the [camera] section."""
    return Bounds(max_shift=cfg.max_shift, max_rotation_deg=cfg.max_rotation_deg,
                  max_scale=cfg.max_scale)


def bands_from(cfg: CameraConfig) -> Bands:
    """Light-regime bands from the [camera] section."""
    return Bands(dusk_below=cfg.regime_dusk_below, night_below=cfg.regime_night_below,
                 ir_chroma_max=cfg.ir_chroma_max)


def has_structure(frames: list[Gray]) -> bool:
    """True when the mean of `frames` shows texture well above their frame-to-frame noise."""
    mean = np.mean(np.stack(frames), axis=0).astype(np.float32)
    noise = 0.0
    if len(frames) > 1:
        diffs = [float(np.std(a - b)) / np.sqrt(2.0) for a, b in itertools.pairwise(frames)]
        noise = median(np.asarray(diffs)) / np.sqrt(len(frames))
    mu = blur(mean)
    local = np.sqrt(np.maximum(blur(mean * mean) - mu * mu, 0.0))
    floor = max(_LEARN_MIN_CONTRAST, _LEARN_NOISE_FACTOR * noise)
    return float((local >= floor).mean()) >= _LEARN_TEXTURED_SHARE


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the last sample was judged against and which check decided."""

    regime: Regime | None      # the frame's own regime
    reference: Regime | None   # the regime whose reference it was compared with
    check: str                 # the deciding check of `analysis.decide` ("ok" when OK)
    since: float | None = None  # a bad run that began at an earlier, held sample (see `_hold`)


class Analyser:
    """Judges each sampled frame; runs in the guard's single analysis thread, not shared."""

    def __init__(self, cfg: CameraConfig, reference: npt.NDArray[Any] | None = None) -> None:
        self.cfg = cfg
        self.t = thresholds_from(cfg)
        self.bounds = bounds_from(cfg)
        self.size = (cfg.analysis_width, cfg.analysis_height)
        self.bank = RegimeBank(bands_from(cfg))
        self.judgement = Judgement(None, None, "learning")
        self._ref: Reference | None = None
        if reference is not None:
            self.set_reference(reference)
        self._learn: list[Gray] = []                        # start-up: frames of the empty scene
        self._candidates: dict[Regime, list[Gray]] = {}     # a new regime's first frames
        self._prev: Gray | None = None
        self._still_since: float | None = None
        self._last_update: float | None = None
        self._moving_prev = False                           # the previous sample's lost tiles moved
        self._passing_since: float | None = None
        self._good_level: float | None = None               # mean gray of the last good sample
        self._prev_good = False                             # the previous sample was judged good
        self._step_level: float | None = None               # the level before a step down, latched
        self._quiet: float | None = None                    # mean change between good samples: noise
        self._good_gray: Gray | None = None                 # the last sample judged good
        self._held_at: float | None = None                  # when the previous sample was held

    @property
    def ref(self) -> Reference | None:
        """The reference the last frame was compared with (or the first learnt)."""
        return self._ref

    def set_reference(self, image: npt.NDArray[Any]) -> Regime:
        """Use a technician's image of the empty scene (any size, gray or BGR) as its regime's."""
        p = prepare_frame(np.asarray(image), self.size)
        regime = self.bank.regime_of(float(p.gray.mean()), p.chroma)
        self._ref = self.bank.learn(regime, p.gray)
        return regime

    def analyse(self, frame: npt.NDArray[Any], now: float,
                gate_open: bool) -> tuple[Verdict, Scores | None]:
        """Verdict and scores of one sampled frame at time `now`."""
        return self.judge(prepare_frame(frame, self.size), now, gate_open)

    def judge(self, p: Prepared, now: float, gate_open: bool) -> tuple[Verdict, Scores | None]:
        """`analyse` for a frame already prepared at the analysis size (the guard prepares each
        sample once, for the steady-scene check and this)."""
        brightness = float(p.gray.mean())
        regime = self.bank.regime_of(brightness, p.chroma)
        picked = self.bank.pick(regime, brightness)
        if picked is None:
            self.judgement = Judgement(regime, None, "learning")
            return self._learning(p.gray, p.chroma), None
        ref_regime, ref = picked
        self._ref = ref
        s, compared = score(ref, p.gray, self._prev, bounds=self.bounds,
                            tile_min=self.t.tile_similarity_min, step_level=self._stepped(brightness))
        self._prev = p.gray
        verdict, check = decide(s, self.t, ref.stats)
        if check == "moved" and not self._moved_whole(p.gray, ref):
            # most of the scene stayed where it was: the movement found is not the camera's
            verdict, check = decide(dataclasses.replace(s, moved_similarity=-1.0), self.t, ref.stats)
        verdict, check = self._passing(verdict, check, s, now)
        verdict, check, since = self._hold(verdict, check, (compared, p.gray), ref, now)
        if 0.0 <= s.change <= self.t.frozen_diff:
            self._still_since = self._still_since if self._still_since is not None else now
        else:
            self._still_since = None
        if (verdict is Verdict.OK and self._still_since is not None
                and now - self._still_since >= self.cfg.frozen_after_s):
            verdict, check = Verdict.FROZEN, "still"
        self.judgement = Judgement(regime, ref_regime, check, since)
        self._prev_good = check in ("ok", "passing")
        if check == "ok":
            self._good_level, self._step_level, self._good_gray = brightness, None, p.gray
            if s.change >= 0.0:  # the noise: falls at once, rises slowly (see QUIET_RISE)
                rise = s.change if self._quiet is None else self._quiet * QUIET_RISE
                self._quiet = min(s.change, rise)
        if check == "ok" and gate_open:  # never learn from a frame only deferred as passing
            self._follow(regime, ref_regime, compared, s, now)
        else:
            self._last_update = None
            self._candidates.clear()
        return verdict, s

    def _moved_whole(self, gray: Gray, ref: Reference) -> bool:
        """Whether the scene's textured tiles changed since the last good sample (see MOVED_CHANGED).

        Without a good sample to compare with, the movement is believed."""
        good = self._good_gray
        if good is None or good.shape != gray.shape:
            return True
        return self._changed(gray, good, ref.tiles, ref.textured) >= MOVED_CHANGED

    def _changed(self, view: Gray, other: Gray, tiles: tuple[int, int],
                 where: npt.NDArray[np.bool_]) -> float:
        """Share of the tiles `where` whose mean change from `other` to `view` exceeds the noise."""
        per_tile = tile_change(np.asarray(cv2.absdiff(view, other), np.float32), tiles)
        return changed_share(per_tile, where, self._quiet)

    def _stepped(self, brightness: float) -> float | None:
        """The light level before a step down in light, while it lasts (see STEP_RATIO).

        The step is read against the sample right before (judged good): a cover arrives between
        two samples. It is latched until a sample is judged good again or the light comes back
        above STEP_RATIO of that level, so every sample of a cover left in place is judged alike.
        """
        if self._step_level is not None and brightness > STEP_RATIO * self._step_level:
            self._step_level = None
        if (self._step_level is None and self._prev_good and self._good_level is not None
                and brightness <= STEP_RATIO * self._good_level):
            self._step_level = self._good_level
        return self._step_level

    def _passing(self, verdict: Verdict, check: str, s: Scores, now: float) -> tuple[Verdict, str]:
        """Defer a structure verdict while the region hiding the scene keeps changing (a passer-by).

        Needs change over two consecutive sample pairs: the frame a cover arrives in changes, the
        next ones do not, so a cover's verdict is never deferred and the gate's bad hold starts on
        its first frame. Bounded by PASSING_MAX_S.
        """
        moving = s.moving >= PASSING_MOVING
        was_moving, self._moving_prev = self._moving_prev, moving
        if check not in PASSING_CHECKS:
            self._passing_since = None
            return verdict, check
        if not (moving and was_moving):
            self._passing_since = None
            return verdict, check
        if self._passing_since is None:
            self._passing_since = now
        if now - self._passing_since >= PASSING_MAX_S:
            return verdict, check
        return Verdict.OK, "passing"

    def _hold(self, verdict: Verdict, check: str, views: tuple[Gray, Gray], ref: Reference,
              now: float) -> tuple[Verdict, str, float | None]:
        """Hold a passer-by's kind of verdict on the sample something arrived in, for one sample.

        From the one sample it arrives in, a figure close to the lens cannot be told from a cover
        (a smooth coat over half of a plain scene is what a cloth over it looks like); the next
        sample can: a cover stays put, a person moves on or keeps moving (`_passing`). So the
        first bad structure verdict after a good sample is reported as "held" (OK) and the next
        verdict decides. When that one is bad too, its run is dated from the held sample
        (`Judgement.since`), and the gate, counting its bad hold from then, closes at the same
        sample as it would have without the hold: the first sample at least `bad_hold_s` after
        the arrival. Not held: when `bad_hold_s` is 0 (the next sample would close it later),
        after a held or bad sample, or when too little of the view is as it was
        (HOLD_UNCHANGED_MIN): in `views`, the frame as compared (aligned to the reference) or as
        it came (something large in front can pull the registration a little off).
        """
        held, self._held_at = self._held_at, None
        if verdict is Verdict.OK:
            return verdict, check, None
        if held is not None:
            return verdict, check, held
        if (check in PASSING_CHECKS and self._prev_good and self.cfg.bad_hold_s > 0
                and max(self._as_it_was(view, ref) for view in views) >= HOLD_UNCHANGED_MIN):
            self._held_at = now
            return Verdict.OK, "held", None
        return verdict, check, None

    def _as_it_was(self, view: Gray, ref: Reference) -> float:
        """Share of all tiles of `view` showing the learnt scene within the noise (0 until known)."""
        if self._quiet is None or view.shape != ref.gray.shape:
            return 0.0
        everywhere = np.ones(ref.textured.shape, dtype=bool)
        return 1.0 - self._changed(view, ref.gray, ref.tiles, everywhere)

    def _follow(self, regime: Regime, ref_regime: Regime, compared: Gray, s: Scores,
                now: float) -> None:
        """Learn from a frame of the empty scene: drift within a regime, or a new regime."""
        if regime is not ref_regime:
            # a new light regime that still shows the learnt scene: learn it from a few such frames
            # (they may alternate with frames of a learnt regime while the light crosses a band)
            self._last_update = None
            frames = self._candidates.setdefault(regime, [])
            frames.append(compared)
            if len(frames) >= self.cfg.learn_frames:
                mean = np.mean(np.stack(frames), axis=0).astype(np.float32)
                self._ref = self.bank.learn(regime, mean)
                del self._candidates[regime]
                log.info("camera reference of the %s regime learnt from %d frames", regime.value,
                         len(frames))
            return
        # daylight drift: learn slowly, and only from frames that are plainly the empty scene
        if s.similarity >= self.cfg.relearn_similarity:
            dt = now - self._last_update if self._last_update is not None else 0.0
            if dt > 0:
                self.bank.drift(regime, compared, min(1.0, dt / self.cfg.relearn_tau_s))
                self._ref = self.bank.get(regime)
            self._last_update = now
        else:
            self._last_update = None

    def _learning(self, gray: Gray, chroma: float | None) -> Verdict:
        """No reference yet: collect `learn_frames` plain frames, then learn them."""
        if blinded(frame_stats(gray), self.t):
            self._learn.clear()
            return Verdict.BLINDED
        self._learn.append(gray)
        self._prev = gray
        if len(self._learn) < self.cfg.learn_frames:
            return Verdict.LEARNING
        frames, self._learn = self._learn, []
        mean = np.mean(np.stack(frames), axis=0).astype(np.float32)
        if not has_structure(frames):
            log.warning("camera start-up: the picture shows no structure (lens covered?); not learnt")
            return Verdict.DARK if float(mean.mean()) <= self.t.dark_brightness else Verdict.COVERED
        regime = self.bank.regime_of(float(mean.mean()), chroma)
        self._ref = self.bank.learn(regime, mean)
        log.info("camera reference of the empty scene (%s) learnt from %d frames", regime.value,
                 len(frames))
        return Verdict.LEARNING
