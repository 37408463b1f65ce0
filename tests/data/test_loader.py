"""DataLoader and TensorDataset: batch shapes and counts, shuffling and its seeds, collation, errors."""

from __future__ import annotations

import numpy as np
import pytest

import ember
from ember.data import DataLoader, Dataset, TensorDataset, default_collate


def numbered_dataset(n: int = 10, features: int = 3) -> TensorDataset:
    """Row i of x is [i, i, ...] and y[i] = i, so every batch says which indices it holds."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], features, axis=1)
    return TensorDataset(x, np.arange(n, dtype=np.int64))


def epoch_indices(loader) -> list[int]:
    return [int(i) for _, y in loader for i in y.numpy()]


class PerSample(Dataset):
    """A dataset without ``__getitems__``: each sample is (tensor, array, int, float)."""

    def __init__(self, n: int = 7):
        self.n = n
        self.requests = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        self.requests.append(i)
        assert isinstance(i, int)  # the loader passes Python ints, not NumPy scalars
        return (ember.tensor(np.full((2, 2), i, np.float32)), np.array([i, -i], dtype=np.int32), i, i / 2)


# ----------------------------------------------------------------------------- batching


@pytest.mark.parametrize("n, batch_size, drop_last, sizes", [
    (10, 3, False, [3, 3, 3, 1]),
    (10, 3, True, [3, 3, 3]),
    (9, 3, False, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]),
    (10, 10, False, [10]),
    (10, 16, False, [10]),
    (10, 16, True, []),
    (5, 1, True, [1, 1, 1, 1, 1]),
])
def test_batch_sizes_and_count(n, batch_size, drop_last, sizes):
    loader = DataLoader(numbered_dataset(n, features=4), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(y) for _, y in batches] == sizes
    for x, y in batches:
        assert isinstance(x, ember.Tensor) and isinstance(y, ember.Tensor)
        assert x.shape == (len(y), 4) and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy())  # rows stay aligned with labels


def test_unshuffled_order_is_sequential():
    loader = DataLoader(numbered_dataset(10), batch_size=4)
    assert epoch_indices(loader) == list(range(10))
    assert epoch_indices(loader) == list(range(10))  # and again next epoch


def test_loader_can_be_iterated_again():
    loader = DataLoader(numbered_dataset(6), batch_size=4, shuffle=True, seed=0)
    assert len(list(loader)) == len(list(loader)) == 2


# ----------------------------------------------------------------------------- shuffling


@pytest.mark.parametrize("drop_last", [False, True])
def test_shuffle_covers_every_index_once_per_epoch(drop_last):
    n, bs = 103, 10
    loader = DataLoader(numbered_dataset(n), batch_size=bs, shuffle=True, seed=5, drop_last=drop_last)
    for _ in range(3):
        seen = epoch_indices(loader)
        if drop_last:
            assert len(seen) == 100 and len(set(seen)) == 100 and set(seen) <= set(range(n))
        else:
            assert sorted(seen) == list(range(n))
        assert seen[:20] != sorted(seen[:20])  # actually shuffled


def test_same_seed_same_order_and_epochs_differ():
    a = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    b = DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=42)
    a_epochs = [epoch_indices(a) for _ in range(3)]
    b_epochs = [epoch_indices(b) for _ in range(3)]
    assert a_epochs == b_epochs
    assert a_epochs[0] != a_epochs[1] != a_epochs[2] != a_epochs[0]


def test_different_seeds_different_orders():
    orders = {tuple(epoch_indices(DataLoader(numbered_dataset(50), batch_size=8, shuffle=True, seed=s)))
              for s in range(5)}
    assert len(orders) == 5


def test_shuffle_order_does_not_depend_on_model_randomness():
    """The loader's generator is its own: drawing from ember's global RNG between epochs changes nothing."""
    a = DataLoader(numbered_dataset(30), batch_size=8, shuffle=True, seed=3)
    b = DataLoader(numbered_dataset(30), batch_size=8, shuffle=True, seed=3)
    first_a = epoch_indices(a)
    ember.randn(100)  # a model initialising or a dropout mask
    first_b = epoch_indices(b)
    ember.randn(1000)
    assert first_a == first_b and epoch_indices(a) == epoch_indices(b)


def test_manual_seed_makes_unseeded_loader_reproducible():
    def orders():
        loader = DataLoader(numbered_dataset(40), batch_size=8, shuffle=True)
        return [epoch_indices(loader) for _ in range(2)]

    ember.manual_seed(11)
    first = orders()
    ember.manual_seed(11)
    second = orders()
    ember.manual_seed(12)
    third = orders()
    assert first == second
    assert first != third


def test_seed_attribute_recorded():
    assert DataLoader(numbered_dataset(4), seed=17).seed == 17
    ember.manual_seed(0)
    s1 = DataLoader(numbered_dataset(4)).seed
    ember.manual_seed(0)
    assert DataLoader(numbered_dataset(4)).seed == s1


# ----------------------------------------------------------------------------- collation


def test_dataset_without_getitems_goes_through_default_collate():
    ds = PerSample(7)
    batches = list(DataLoader(ds, batch_size=3))
    assert len(batches) == 3
    img, arr, ints, floats = batches[0]
    for t in batches[0]:
        assert isinstance(t, ember.Tensor)
    assert img.shape == (3, 2, 2) and img.dtype == np.float32
    assert arr.shape == (3, 2) and arr.dtype == np.int32
    assert ints.shape == (3,) and ints.dtype.kind == "i"
    assert floats.shape == (3,) and floats.dtype.kind == "f"
    np.testing.assert_array_equal(img.numpy()[:, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(arr.numpy(), [[0, 0], [1, -1], [2, -2]])
    np.testing.assert_array_equal(ints.numpy(), [0, 1, 2])
    np.testing.assert_allclose(floats.numpy(), [0.0, 0.5, 1.0])
    last = batches[-1]
    np.testing.assert_array_equal(last[2].numpy(), [6])
    assert sorted(ds.requests) == list(range(7))


def test_per_sample_dataset_shuffled():
    ds = PerSample(20)
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=1)
    seen = [int(i) for batch in loader for i in batch[2].numpy()]
    assert sorted(seen) == list(range(20)) and seen != list(range(20))


def test_custom_collate_fn():
    ds = PerSample(5)
    loader = DataLoader(ds, batch_size=2, collate_fn=lambda samples: [s[2] for s in samples])
    assert list(loader) == [[0, 1], [2, 3], [4]]


def test_default_collate_directly():
    single = default_collate([np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    assert isinstance(single, ember.Tensor) and single.shape == (2, 2)
    np.testing.assert_array_equal(single.numpy(), [[1, 2], [3, 4]])
    nested = default_collate([(1, [2.0, 3.0]), (4, [5.0, 6.0])])
    assert isinstance(nested, tuple) and len(nested) == 2
    np.testing.assert_array_equal(nested[0].numpy(), [1, 4])
    # a list inside a sample is a sequence of fields, as in PyTorch: one batch per position
    assert isinstance(nested[1], tuple) and len(nested[1]) == 2
    np.testing.assert_array_equal(nested[1][0].numpy(), [2, 5])
    np.testing.assert_array_equal(nested[1][1].numpy(), [3, 6])
    tensors = default_collate([ember.tensor([1, 2]), ember.tensor([3, 4]), ember.tensor([5, 6])])
    np.testing.assert_array_equal(tensors.numpy(), [[1, 2], [3, 4], [5, 6]])


# ----------------------------------------------------------------------------- TensorDataset and errors


def test_tensor_dataset_indexing():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    ds = TensorDataset(ember.tensor(x), np.array([0, 1, 0, 1]))
    assert len(ds) == 4
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), x[2])
    assert yi.item() == 0
    xb, yb = ds.__getitems__(np.array([3, 0]))
    np.testing.assert_array_equal(xb.numpy(), x[[3, 0]])
    np.testing.assert_array_equal(yb.numpy(), [1, 0])


def test_tensor_dataset_single_array():
    ds = TensorDataset(np.arange(5))
    (batch,) = next(iter(DataLoader(ds, batch_size=5)))
    np.testing.assert_array_equal(batch.numpy(), np.arange(5))


def test_tensor_dataset_length_mismatch_raises():
    with pytest.raises(ValueError, match=r"different lengths \[4, 3\]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match=r"different lengths \[2, 2, 5\]"):
        TensorDataset(np.zeros(2), np.zeros(2), np.zeros(5))


def test_tensor_dataset_needs_an_array():
    with pytest.raises(ValueError, match="at least one array"):
        TensorDataset()


@pytest.mark.parametrize("batch_size", [0, -1, -64])
def test_non_positive_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match=f"batch_size must be positive, got {batch_size}"):
        DataLoader(numbered_dataset(4), batch_size=batch_size)


def test_empty_dataset_gives_no_batches():
    loader = DataLoader(TensorDataset(np.zeros((0, 3))), batch_size=4, shuffle=True, seed=0)
    assert len(loader) == 0 and list(loader) == []


def test_device_cpu_keeps_batches_on_cpu():
    loader = DataLoader(numbered_dataset(5), batch_size=2, device="cpu")
    for x, y in loader:
        assert x.device == ember.device("cpu") and y.device == ember.device("cpu")
