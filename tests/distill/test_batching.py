"""The loop's batch order: seeded by seed and epoch, and grouped by length when asked."""

from __future__ import annotations

from distill.config import TrainConfig
from distill.loop import batch_indices, total_steps


def _epoch(config: TrainConfig, lengths: list[int], epoch: int) -> list[list[int]]:
    per_epoch, _ = total_steps(config, len(lengths))
    return [
        batch_indices(config, lengths, epoch * per_epoch + i, per_epoch) for i in range(per_epoch)
    ]


def test_group_by_length_sees_every_example_once_per_epoch_in_even_batches() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(1_003)]
    config = TrainConfig(batch_size=4, group_by_length=True, seed=3)
    batches = _epoch(config, lengths, 0)
    assert sorted(i for b in batches for i in b) == list(range(1_003))
    assert sum(len(b) < 4 for b in batches) == 1  # 1,003 = 250 x 4 + 3

    plain = _epoch(TrainConfig(batch_size=4, seed=3), lengths, 0)

    def padding(bs: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)

    assert padding(batches) * 10 < padding(plain)


def test_grouped_order_is_reproducible_and_changes_with_the_epoch() -> None:
    lengths = [i % 17 for i in range(500)]
    config = TrainConfig(batch_size=8, group_by_length=True, seed=1)
    assert _epoch(config, lengths, 0) == _epoch(config, lengths, 0)  # what --resume relies on
    assert _epoch(config, lengths, 0) != _epoch(config, lengths, 1)
    ungrouped = _epoch(TrainConfig(batch_size=8, seed=1), lengths, 0)
    assert sorted(map(sorted, ungrouped)) != sorted(map(sorted, _epoch(config, lengths, 0)))
