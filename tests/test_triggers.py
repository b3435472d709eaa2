import pytest
import torch
from PIL import Image

from mesa.errors import MesaError
from mesa.method.triggers import (binary_trigger, canonical_patterns, color_trigger, image_trigger, parse_trigger,
                           pattern_number, stamp)


def test_binary_170_is_the_checkerboard():
    t = binary_trigger(170)
    assert t.shape == (3, 3, 3)
    assert t[0].tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    assert torch.equal(t[0], t[1]) and torch.equal(t[1], t[2])


def test_bits_are_most_significant_first_row_major():
    assert binary_trigger(256)[0].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert binary_trigger(1)[0].tolist() == [[0, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert all(pattern_number(binary_trigger(n)[0]) == n for n in (0, 7, 170, 511))


def test_51_canonical_3x3_patterns():
    patterns = canonical_patterns(3)
    assert len(patterns) == 51
    assert 170 in patterns and 0 in patterns and 511 not in patterns  # 511 is 0 inverted


def test_out_of_range_pattern():
    with pytest.raises(MesaError, match="0..511"):
        binary_trigger(512)


def test_color_trigger_is_deterministic():
    assert torch.equal(color_trigger(3), color_trigger(3))
    assert not torch.equal(color_trigger(3), color_trigger(4))
    assert color_trigger(3, 5).shape == (3, 5, 5)


def test_image_trigger_round_trip_and_errors(tmp_path):
    Image.new("RGB", (3, 3), (255, 0, 0)).save(tmp_path / "t.png")
    t = image_trigger(tmp_path / "t.png", image_size=32)
    assert t.shape == (3, 3, 3) and t[0].min() == 1 and t[1].max() == 0
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(MesaError, match="not a readable image"):
        image_trigger(tmp_path / "bad.png")
    Image.new("RGB", (9, 9)).save(tmp_path / "big.png")
    with pytest.raises(MesaError, match="quarter"):
        image_trigger(tmp_path / "big.png", image_size=32)
    with pytest.raises(MesaError, match="does not exist"):
        image_trigger(tmp_path / "missing.png")


@pytest.mark.parametrize("spec", ["binary:x", "nope:1", "binary:", "binary:1:0", "color:1:99"])
def test_bad_specs(spec):
    with pytest.raises(MesaError):
        parse_trigger(spec, 32)


def test_stamp_at_known_location_uint8():
    images = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)
    out = stamp(images, binary_trigger(170), torch.tensor([[1, 2], [5, 5]]))
    assert out[0, :, 1:4, 2:5].eq(binary_trigger(170).byte() * 255).all()
    assert out[1, :, 5:8, 5:8].eq(binary_trigger(170).byte() * 255).all()
    assert out.sum() == 2 * 4 * 3 * 255  # nothing outside the patches
    assert images.sum() == 0  # input untouched


def test_stamp_one_trigger_per_image_float_and_gradient():
    images = torch.rand(4, 3, 16, 16)
    triggers = torch.rand(4, 3, 3, 3, requires_grad=True)
    out = stamp(images, triggers, torch.tensor([2, 7]))
    for i in range(4):
        assert torch.allclose(out[i, :, 2:5, 7:10], triggers[i])
    out.sum().backward()
    assert torch.allclose(triggers.grad, torch.ones_like(triggers))


def test_random_locations_are_per_image_and_seeded():
    images = torch.zeros(64, 3, 32, 32)
    trigger = torch.ones(3, 3, 3)
    a = stamp(images, trigger, generator=torch.Generator().manual_seed(0))
    b = stamp(images, trigger, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert (a.sum((1, 2, 3)) == 27).all()  # whole trigger inside every image
    where = a[:, 0].flatten(1).argmax(1)
    assert len(set(where.tolist())) > 10
