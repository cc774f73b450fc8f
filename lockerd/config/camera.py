"""[camera]: the camera guard's thresholds and the evidence snapshots (Art. 19)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from lockerd.config.base import Strict


class Camera(Strict):
    """Camera guard: intake opens only while the camera can see (Art. 19); evidence per operation."""

    enabled: bool = Field(default=True, description="Run the camera guard (False: intake stays closed).")
    source: str = Field(default="0", min_length=1, max_length=500,
                        description="V4L2 device index ('0'), device or video file path, or RTSP URL; "
                                    "ignored by the sim backend.")
    width: int = Field(default=640, ge=160, le=3840, description="Requested capture width.")
    height: int = Field(default=480, ge=120, le=2160, description="Requested capture height.")
    sample_hz: float = Field(default=5.0, ge=1.0, le=30.0,
                             description="Frames decoded and analysed per second (the others are "
                                         "grabbed and dropped undecoded).")
    idle_sample_hz: float = Field(default=2.0, ge=1.0, le=30.0,
                                  description="Frames sampled per second while the scene is steady "
                                              "(see steady_mean_diff); the first changed frame "
                                              "brings back sample_hz.")
    cv_threads: int = Field(default=1, ge=1, le=4,
                            description="OpenCV worker threads (cv2.setNumThreads): the analysed "
                                        "frame is small, a pool only adds hand-off CPU.")
    analysis_width: int = Field(default=160, ge=64, le=640,
                                description="Width of the grayscale frame analysed (speed vs detail).")
    analysis_height: int = Field(default=120, ge=48, le=480, description="Height of the analysed frame.")
    steady_mean_diff: float = Field(default=3.0, ge=0, le=32,
                                    description="A sample whose mean gray-level difference to the "
                                                "last frame judged good in full is at most this (and "
                                                "above frozen_diff) takes its verdict without the "
                                                "full judgement; 0: judge every sample in full.")
    steady_cell_diff: float = Field(default=8.0, ge=0, le=64,
                                    description="... and whose difference in every cell of an 8x6 "
                                                "grid is at most this (a hand or a person in one "
                                                "corner is judged in full).")
    recheck_s: float = Field(default=2.0, ge=0, le=10,
                             description="A full judgement at least this often however steady the "
                                         "scene (bounds how late a change too slow for the steady "
                                         "limits is judged).")
    down_after_s: float = Field(default=1.0, gt=0, le=30,
                                description="No new frame for this long: camera_down.")
    fresh_s: float = Field(default=2.0, gt=0, le=2.0,
                           description="Intake is open only while the last good verdict is this fresh.")
    bad_hold_s: float = Field(default=0.5, ge=0, le=1.0,
                              description="A bad verdict must last this long before intake closes "
                                          "(a passing shadow does not flap the gate).")
    good_hold_s: float = Field(default=3.0, ge=0, le=60,
                               description="Good verdicts for this long before intake reopens.")
    frozen_after_s: float = Field(default=1.5, gt=0, le=60,
                                  description="Frames without any sensor noise this long: frozen.")
    frozen_diff: float = Field(default=0.05, ge=0, le=5,
                               description="Mean gray-level change between samples below which a "
                                           "sample counts as still.")
    dark_brightness: float = Field(default=6.0, ge=0, le=128,
                                   description="Mean gray at or below, once the scene's structure "
                                               "is gone: dark (black), not covered.")
    dark_ratio: float = Field(default=0.35, gt=0, le=1,
                              description="Mean gray at or below this share of the light regime's "
                                          "reference, with the scene's structure gone: dark "
                                          "(covered lens); a scene dim by nature stays OK.")
    covered_std: float = Field(default=2.0, ge=0, le=64,
                               description="Gray-level standard deviation at or below, once the "
                                           "scene's structure is gone: covered (uniform).")
    covered_entropy: float = Field(default=2.0, ge=0, le=8,
                                   description="Histogram entropy (bits) at or below, once the "
                                               "scene's structure is gone: covered.")
    covered_lost: float = Field(default=0.5, gt=0, le=1,
                                description="Share of the scene's textured tiles flattened (a hand, "
                                            "cloth or tape over part of the lens) at or above: "
                                            "covered.")
    redirected_lost: float = Field(default=0.85, gt=0, le=1,
                                   description="Share of the scene's textured tiles no longer showing "
                                               "it at or above: redirected.")
    tile_similarity_min: float = Field(default=0.3, ge=-1, le=1,
                                       description="Structure term of a tile vs the reference below "
                                                   "which the tile no longer shows the scene.")
    saturated_fraction: float = Field(default=0.45, gt=0, le=1,
                                      description="Fraction of saturated pixels at or above (and that "
                                                  "much more than the reference's): blinded.")
    blinded_brightness: float = Field(default=235.0, ge=128, le=255,
                                      description="Mean gray at or above: blinded.")
    sharpness_ratio_min: float = Field(default=0.25, ge=0, le=1,
                                       description="Fine detail over local contrast vs reference "
                                                   "(tiles' upper quartile) at or below, edges below "
                                                   "twice edge_ratio_min: defocused.")
    edge_ratio_min: float = Field(default=0.25, ge=0, le=1,
                                  description="Edge density vs reference at or below, fine detail "
                                              "below twice sharpness_ratio_min: defocused.")
    contrast_ratio_min: float = Field(default=0.45, ge=0, le=1,
                                      description="Contrast vs reference at or below: sprayed.")
    similarity_min: float = Field(default=0.25, ge=-1, le=1,
                                  description="Structural similarity to the reference (after "
                                              "alignment) at or below: redirected.")
    max_shift: float = Field(default=0.05, ge=0, le=0.2,
                             description="Camera movement compensated before comparing: shift of "
                                         "the picture's centre, as a share of its width; further "
                                         "is compared unaligned (turned away).")
    max_rotation_deg: float = Field(default=4.0, ge=0, le=15,
                                    description="Camera rotation compensated before comparing (deg).")
    max_scale: float = Field(default=0.05, ge=0, le=0.2,
                             description="Scale change compensated before comparing (|scale - 1|).")
    regime_dusk_below: float = Field(default=90.0, gt=0, le=255,
                                     description="Mean gray below which a frame belongs to the dusk "
                                                 "regime (its own learnt reference).")
    regime_night_below: float = Field(default=40.0, gt=0, le=255,
                                      description="Mean gray below which a frame belongs to the night "
                                                  "regime.")
    ir_chroma_max: float = Field(default=3.0, ge=0, le=50,
                                 description="Mean colour spread at or below which a colour camera's "
                                             "frame is its infrared night mode (a regime of its own).")
    learn_frames: int = Field(default=5, ge=1, le=100,
                              description="Frames averaged into the first reference of the empty scene.")
    relearn_tau_s: float = Field(default=900.0, ge=10, le=86400,
                                 description="Time constant of the slow reference update (daylight); "
                                             "never updated while tampered.")
    relearn_similarity: float = Field(default=0.8, ge=0, le=1,
                                      description="Only frames at least this similar update the "
                                                  "reference (a person standing there is not learnt).")
    reference_file: Path | None = Field(
        default=None, description="PNG of the empty scene taken by a technician; unset: learnt at start.")
    evidence_retention_days: int = Field(default=30, ge=1, le=3650,
                                         description="Evidence snapshots older than this are deleted.")
    evidence_jpeg_quality: int = Field(default=70, ge=30, le=100,
                                       description="JPEG quality of snapshots (70: a face or a "
                                                   "parcel label at the cabinet stays recognisable "
                                                   "at 26-41 KB a 640x480 snapshot, 85 took 40-61).")
    evidence_width: int = Field(default=640, ge=160, le=3840,
                                description="Snapshots wider than this are scaled down to it "
                                            "(aspect kept); a 1080p camera's would be 4x the bytes.")

    @model_validator(mode="after")
    def _closes_within_a_second(self) -> Camera:
        if self.bad_hold_s + 1.0 / min(self.sample_hz, self.idle_sample_hz) > 1.0:
            raise ValueError("bad_hold_s + 1/idle_sample_hz (and + 1/sample_hz) must not exceed "
                             "1 s (a bad verdict closes intake within 1 s)")
        if self.idle_sample_hz > self.sample_hz:
            raise ValueError("idle_sample_hz must not exceed sample_hz")
        if self.analysis_width * 3 != self.analysis_height * 4 and \
                self.analysis_width * 9 != self.analysis_height * 16:
            raise ValueError("analysis_width x analysis_height must be 4:3 or 16:9")
        if self.regime_night_below >= self.regime_dusk_below:
            raise ValueError("regime_night_below must be below regime_dusk_below")
        return self
