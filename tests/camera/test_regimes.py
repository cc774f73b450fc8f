"""Light regimes and covers: a scene dim by nature stays OK and covering it fails; infrared is learnt."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd.camera.analyser import Analyser, has_structure
from lockerd.camera.analysis import Verdict
from lockerd.camera.frames import prepare
from lockerd.camera.regimes import Bands, Regime, RegimeBank
from lockerd.config import Camera
from tests.camera.scenes import SIDES, SIZE, Img, cover, expose, gray_noise, infrared, view

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 0.2


def learnt(frames: Callable[[np.random.Generator], Img], seed: int = 0) -> tuple[Analyser, float]:
    """An analyser that learnt the scene from `frames` and judged it OK for a while."""
    rng = np.random.default_rng(seed)
    analyser, t = Analyser(Camera()), 0.0
    for _ in range(Camera().learn_frames + 5):
        t += STEP
        verdict, _ = analyser.analyse(frames(rng), t, True)
    assert verdict is Verdict.OK
    return analyser, t


def run(analyser: Analyser, t: float, frames: Callable[[np.random.Generator], Img], n: int,
        seed: int = 1, gate_open: bool = True) -> tuple[list[Verdict], float]:
    rng = np.random.default_rng(seed)
    verdicts = []
    for _ in range(n):
        t += STEP
        verdicts.append(analyser.analyse(frames(rng), t, gate_open)[0])
    return verdicts, t


@FAST
@given(gain=st.floats(0.08, 0.27), share=st.floats(0.85, 1.0), side=st.sampled_from(SIDES),
       seed=st.integers(0, 2**16))
def test_a_scene_dim_by_nature_stays_ok_and_covering_it_fails(gain: float, share: float, side: str,
                                                              seed: int) -> None:
    """A dim corridor at night, learnt dim (mean gray ~10-45): OK, not "dark"; a cloth as dim
    as the scene over most of it is still found."""
    def dim(rng: np.random.Generator) -> Img:
        return expose(view(), rng, gain=gain * float(rng.uniform(0.9, 1.1)), noise=1.5)

    analyser, t = learnt(dim, seed)
    verdicts, t = run(analyser, t, dim, 10, seed + 1)
    assert verdicts == [Verdict.OK] * 10
    assert float(prepare(dim(np.random.default_rng(seed)), SIZE).mean()) < 50

    def covered(rng: np.random.Generator) -> Img:
        return expose(cover(view(), share, side), rng, gain=gain, noise=1.5)

    verdicts, _ = run(analyser, t, covered, 3, seed + 2, gate_open=False)
    assert Verdict.OK not in verdicts, (gain, share, side)


@FAST
@given(share=st.floats(0.8, 1.0), side=st.sampled_from(SIDES),
       colour=st.tuples(st.floats(20, 230), st.floats(20, 230), st.floats(20, 230)),
       seed=st.integers(0, 2**16))
def test_partial_covers_beyond_the_threshold_fail(share: float, side: str,
                                                  colour: tuple[float, float, float], seed: int) -> None:
    """A hand or cloth over 80 % or more of the view, from any side or corner, whatever its colour;
    the uncovered part keeps its texture."""
    analyser, t = learnt(lambda rng: expose(view(), rng), seed)
    verdicts, _ = run(analyser, t, lambda rng: expose(cover(view(), share, side, colour), rng), 2,
                      seed + 1, gate_open=False)
    assert Verdict.OK not in verdicts, verdicts


def test_a_person_in_front_is_not_a_cover() -> None:
    """A third of the view hidden (someone close to the camera) is not "most of the view"."""
    analyser, t = learnt(lambda rng: expose(view(), rng))
    for side in SIDES:
        verdicts, t = run(analyser, t, lambda rng, side=side: expose(cover(view(), 0.3, side), rng), 2)
        assert verdicts == [Verdict.OK] * 2, side


def test_infrared_mode_is_a_learnt_regime_and_a_cover_in_it_still_fails() -> None:
    analyser, t = learnt(lambda rng: expose(view(), rng))
    assert analyser.bank.learnt == [Regime.DAY]

    def ir(rng: np.random.Generator) -> Img:
        return gray_noise(infrared(view()), rng)

    verdicts, t = run(analyser, t, ir, 20)
    assert verdicts == [Verdict.OK] * 20
    assert Regime.IR in analyser.bank.learnt
    assert analyser.judgement.reference is Regime.IR
    verdicts, t = run(analyser, t, lambda rng: gray_noise(infrared(cover(view(), 1.0, "left")), rng), 3,
                      gate_open=False)
    assert Verdict.OK not in verdicts
    # morning: colour again, judged against the day reference learnt before
    verdicts, t = run(analyser, t, lambda rng: expose(view(), rng), 5)
    assert verdicts == [Verdict.OK] * 5
    assert analyser.judgement.reference is Regime.DAY


def test_dusk_falling_learns_darker_regimes_without_a_false_alarm() -> None:
    analyser, t = learnt(lambda rng: expose(view(), rng))
    verdicts: list[Verdict] = []
    for gain in np.linspace(1.0, 0.12, 40):
        v, t = run(analyser, t, lambda rng, g=gain: expose(view(), rng, gain=g, noise=2.5), 3)
        verdicts += v
    assert set(verdicts) == {Verdict.OK}
    assert {Regime.DUSK, Regime.NIGHT} <= set(analyser.bank.learnt)
    # a covered lens at night is judged against the night reference: dark, not a new regime
    verdicts, _ = run(analyser, t, lambda rng: expose(cover(view(), 1.0, "left", (10, 10, 10)), rng,
                                                      gain=0.12, noise=2.5), 3, gate_open=False)
    assert Verdict.OK not in verdicts


def test_a_cloth_in_front_of_the_lens_at_start_up_is_not_learnt() -> None:
    analyser, t = Analyser(Camera()), 0.0
    cloth = cover(view(), 1.0, "left")
    verdicts, _ = run(analyser, t, lambda rng: expose(cloth, rng, noise=1.0), Camera().learn_frames)
    assert verdicts[-1] is Verdict.COVERED
    assert analyser.ref is None
    rng = np.random.default_rng(3)
    assert not has_structure([prepare(expose(cloth, rng, noise=1.0), SIZE) for _ in range(5)])
    assert has_structure([prepare(expose(view(), rng, gain=0.1, noise=1.5), SIZE) for _ in range(5)])


def test_the_bank_picks_the_regime_nearest_in_light() -> None:
    bank = RegimeBank(Bands(dusk_below=90, night_below=40, ir_chroma_max=3))
    assert bank.pick(Regime.DAY, 120.0) is None
    assert bank.regime_of(30.0, 1.0) is Regime.NIGHT   # no colour seen yet: gray is not infrared
    assert bank.regime_of(120.0, 20.0) is Regime.DAY
    assert bank.regime_of(120.0, 1.0) is Regime.IR    # a colour camera's gray picture
    assert bank.regime_of(60.0, None) is Regime.DUSK
    rng = np.random.default_rng(0)
    bank.learn(Regime.DAY, prepare(expose(view(), rng), SIZE))
    bank.learn(Regime.NIGHT, prepare(expose(view(), rng, gain=0.15), SIZE))
    picked = bank.pick(Regime.DUSK, 25.0)
    assert picked is not None
    assert picked[0] is Regime.NIGHT
    picked = bank.pick(Regime.DUSK, 100.0)
    assert picked is not None
    assert picked[0] is Regime.DAY
    assert bank.get(Regime.IR) is None
