"""PokeSim dynamics: who moves when a segment is poked, stiffness, decay, and the poke direction."""
import numpy as np
import pytest

from poke2video.errors import UserError
from poke2video.sim.bodies import SPECIES, ancestors, sample_body
from poke2video.sim.physics import PhysicsConfig, Poke, poke_force, simulate

PLANT = next(s for s in SPECIES if s.name == "maple")
FIGURE = next(s for s in SPECIES if s.name == "doll")


def body_of(species, seed=3):
    return sample_body(np.random.default_rng(seed), species)


def leaf_of(body):
    children = {int(p) for p in body.parent}
    return max(s for s in range(body.num_segments) if s not in children)


def poke_tip(body, segment, strength=0.2, turn=np.pi / 2):
    local = np.array([body.length[segment] * 0.8, 0.0])
    angle = np.cumsum(body.rest_angle[np.nonzero(ancestors(body.parent)[:, segment])[0]])[-1]
    direction = np.array([np.cos(angle + turn), np.sin(angle + turn)])
    return Poke(segment, local, poke_force(body, segment, local, direction, strength))


def run(body, poke, frames=11):
    pose, track = simulate([body], [poke], PhysicsConfig(frames=frames))
    return pose[0, :, :body.num_segments], track[0]


def relative_deflection(body, pose):
    """[F, S] joint angle minus its rest value (root: absolute minus rest)."""
    angle = pose[..., 0]
    parent_angle = np.where(body.parent >= 0, angle[:, np.maximum(body.parent, 0)], 0.0)
    return angle - parent_angle - body.rest_angle


def test_poking_a_leaf_bends_only_the_joints_on_its_path_and_moves_its_subtree():
    body = body_of(PLANT)
    leaf = leaf_of(body)
    pose, _ = run(body, poke_tip(body, leaf))
    deflection = np.abs(relative_deflection(body, pose)).max(axis=0)
    path = ancestors(body.parent)[:, leaf] > 0
    path[0] = False
    assert (deflection[path] > 1e-3).all()
    assert np.allclose(deflection[~path], 0.0, atol=1e-12)
    moved = np.abs(pose - pose[:1]).max(axis=(0, 2))
    assert np.allclose(moved[0], 0.0)                          # the root never moves
    below_trunk = ancestors(body.parent)[1] > 0
    assert (moved[below_trunk] > 1e-4).all()                   # everything hanging on a bent joint moves


def test_figure_limbs_move_only_through_a_shared_parent():
    body = body_of(FIGURE)
    forearm = 3                                                # torso, head, upper arm, forearm, ...
    assert body.parent[forearm] == 2
    pose, _ = run(body, poke_tip(body, forearm))
    moved = np.abs(pose - pose[:1]).max(axis=(0, 2))
    assert (moved[[2, 3]] > 1e-4).all()
    others = [s for s in range(body.num_segments) if s not in (2, 3)]
    assert np.allclose(moved[others], 0.0)                    # torso (root), head, other arm, legs still


def test_stiffer_objects_move_less_and_stronger_pokes_more():
    body = body_of(PLANT)
    leaf = leaf_of(body)
    poke = poke_tip(body, leaf)
    _, track = run(body, poke)
    base = np.linalg.norm(track[-1] - track[0])
    body.omega = body.omega * 1.5
    _, stiff_track = run(body, poke)
    assert np.linalg.norm(stiff_track[-1] - stiff_track[0]) < 0.7 * base
    body.omega = body.omega / 1.5
    _, strong_track = run(body, poke_tip(body, leaf, strength=0.4))
    assert np.linalg.norm(strong_track[-1] - strong_track[0]) > 1.5 * base


@pytest.mark.parametrize("species", [PLANT, FIGURE])
def test_poked_point_moves_with_the_push_then_the_motion_decays(species):
    body = body_of(species)
    segment = leaf_of(body) if species is PLANT else 3
    poke = poke_tip(body, segment)
    pose, track = run(body, poke, frames=200)
    assert np.dot(track[10] - track[0], poke.force) > 0
    swing = np.linalg.norm(track - track[0], axis=1)
    assert swing[-20:].max() < 0.05 * swing[:30].max()


def test_background_poke_moves_nothing():
    body = body_of(PLANT)
    pose, _ = run(body, Poke(0, np.zeros(2), np.zeros(2)))
    assert np.array_equal(pose, np.repeat(pose[:1], len(pose), axis=0))


def test_ambient_sway_is_off_by_default_and_moves_everything_when_on():
    body = body_of(PLANT)
    still = Poke(0, np.zeros(2), np.zeros(2))
    assert PhysicsConfig().sway == 0.0
    pose, _ = simulate([body], [still], PhysicsConfig(sway=0.05))
    moved = np.abs(pose[0] - pose[0, :1]).max(axis=(0, 2))[:body.num_segments]
    assert moved[0] == 0.0 and (moved[1:] > 0).all()


def test_poses_between_frames_keep_the_frames_and_lie_between_them():
    body = body_of(PLANT)
    poke = poke_tip(body, leaf_of(body))
    pose, track = simulate([body], [poke], PhysicsConfig())
    fine, fine_track = simulate([body], [poke], PhysicsConfig(), frames_per_step=4)
    assert fine.shape[1] == (pose.shape[1] - 1) * 4 + 1
    np.testing.assert_array_equal(fine[:, ::4], pose)               # the same motion, read more often
    np.testing.assert_array_equal(fine_track[:, ::4], track)
    steps = np.linalg.norm(np.diff(fine_track[0], axis=0), axis=-1)
    coarse = np.linalg.norm(np.diff(track[0], axis=0), axis=-1)
    assert steps.max() < 0.5 * coarse.max()                        # each step a fraction of a frame's


@pytest.mark.parametrize("frames_per_step", [0, 3])
def test_poses_between_frames_must_divide_the_substeps(frames_per_step):
    body = body_of(PLANT)
    with pytest.raises(UserError, match="must divide the 8 integration substeps"):
        simulate([body], [poke_tip(body, leaf_of(body))], PhysicsConfig(), frames_per_step=frames_per_step)
