"""The curriculum's plan as a pure value: no Trainer, no data, milliseconds."""

import numpy as np
import pytest

from classit.data.plan import CurriculumPlan, Stage, micro_batches, rank_share
from classit.optim import Phase

STAGES = (Stage("pretrain", ["corpus"], epochs=2), Stage("it", ["talk", "wiki"], epochs=2, phase=Phase(lr=1e-4)))
SIZES = {"corpus": 12, "talk": 8, "wiki": 10}


def plan(**kwargs) -> CurriculumPlan:
    return CurriculumPlan(**{"stages": STAGES, "sizes": SIZES, "batch_size": 4, **kwargs})


@pytest.mark.parametrize("world, cap, expected", [(1, None, (8, 1)), (2, None, (4, 1)), (8, None, (1, 1)),
                                                  (1, 3, (2, 4)), (2, 3, (2, 2)), (8, 3, (1, 1))])
def test_micro_batches_make_up_the_global_batch_on_any_number_of_devices(world, cap, expected):
    micro, accumulate = micro_batches(8, cap, world)
    assert (micro, accumulate) == expected and micro * accumulate * world == 8
    assert (plan(batch_size=8, micro_batch_size=cap, world_size=world).micro,
            plan(batch_size=8, micro_batch_size=cap, world_size=world).accumulate) == expected


def test_a_global_batch_that_does_not_split_over_the_devices_names_the_key():
    with pytest.raises(ValueError, match="data.batch_size: 6 sequences do not split evenly over 4 devices"):
        micro_batches(6, None, 4)


def test_steps_per_stage_and_the_stage_of_an_epoch():
    p = plan()
    assert p.total_epochs == 4
    assert [p.stage_index(e) for e in range(4)] == [0, 0, 1, 1]
    assert [p.ends_stage(e) for e in range(4)] == [False, True, False, True]
    assert p.counts(STAGES[0]) == [3] and p.counts(STAGES[1]) == [2, 2]
    assert [(s.name, s.steps) for s in p.stage_plans()] == [("pretrain", 6), ("it", 8)]
    assert p.total_steps == 14
    assert plan(limit_train_batches=2).epoch_steps(STAGES[1]) == 2  # Lightning's per-device batch limit
    assert plan(limit_train_batches=0.5).stage_plans()[1].steps == 2 * 2
    assert plan(max_steps=10).total_steps == 10  # max_steps cuts the schedule, not the stages' plans
    with pytest.raises(ValueError, match="epoch 4 is past the curriculum's 4 epochs"):
        p.stage_index(4)


def test_max_steps_cuts_the_stages_and_their_phases_alike():
    assert plan().stage_steps() == [6, 8]
    assert plan(max_steps=10).stage_steps() == [6, 4] and plan(max_steps=4).stage_steps() == [4, 0]
    assert [plan().phase_of(i) for i in range(2)] == [0, 1]
    assert plan(stages=(STAGES[0], Stage("more", ["corpus"]))).phase_of(1) == 0  # no phase of its own: continues
    cut = plan(max_steps=10).schedule(Phase())
    assert [(start, length) for start, length, _ in cut.phases] == [(0, 6), (6, 4)]
    assert [(start, length) for start, length, _ in plan(max_steps=6).schedule(Phase()).phases] == [(0, 6)]


def test_weights_set_the_share_of_batches_and_keep_the_epoch_length():
    weighted = Stage("it", ["talk", "wiki"], weights=[3, 1])
    p = plan(stages=(weighted,))
    assert p.counts(weighted) == [3, 1]  # 4 batches, as without weights
    batches = p.batches(0, 0)
    assert sorted(k for k, _ in batches) == [0, 0, 0, 1]
    assert len({i for k, items in batches if k == 0 for i in items}) <= 8  # talk repeats examples


def test_batches_are_the_hand_computed_numpy_order():
    p, seed, stage, epoch = plan(seed=7), 7, 1, 3
    rng = np.random.default_rng([seed, stage, epoch])
    talk, wiki = rng.permutation(8), rng.permutation(10)
    whole = [(0, talk[0:4].tolist()), (0, talk[4:8].tolist()), (1, wiki[0:4].tolist()), (1, wiki[4:8].tolist())]
    expected = [whole[i] for i in rng.permutation(4)]
    assert p.batches(stage, epoch) == expected
    assert p.batches(stage, epoch) != p.batches(stage, epoch - 1)


def test_ranks_share_each_global_batch_as_one_device_with_accumulation_does():
    batches = plan().batches(0, 1)
    two = [plan(world_size=2).rank_batches(1, r) for r in (0, 1)]
    assert [(k, a + b) for (k, a), (_, b) in zip(*two)] == batches
    one = plan(micro_batch_size=2).rank_batches(1, 0)
    assert [(k, a + b) for (k, a), (_, b) in zip(one[::2], one[1::2])] == batches
    assert rank_share([(0, [1, 2, 3, 4])], 2, 1, 2) == [(0, [2]), (0, [4])]


def test_phases_follow_the_stages():
    schedule = plan().schedule(Phase(lr=6e-4, warmup=0.5))
    assert [(start, steps, p.lr) for start, steps, p in schedule.phases] == [(0, 6, 6e-4), (6, 8, 1e-4)]
    assert schedule.lr(0, 6e-4) == pytest.approx(6e-4 / 3)  # warm-up over 3 of the first phase's 6 steps
    assert schedule.lr(13, 6e-4) == pytest.approx(1e-4 * 0.1)  # the second phase ends at its floor
