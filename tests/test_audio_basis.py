"""Mouth-motion bases fit on real talking video (preparation_step1), their files and the opt-in pca.pkl reader."""
import numpy as np
import pytest

from talkingface.errors import UserInputError
from talkingface.mouth_basis import BlendshapeBasis, PixelBasis, read_original_pca_pkl
from talkingface.utils import MP_LOWER_INNER_LIP_MID, MP_UPPER_INNER_LIP_MID, mouth_opening


@pytest.fixture(scope="module")
def step1_out(sample_data, tmp_path_factory):
    """preparation_step1 on two real GRID clips of different speakers (links into a temp folder)."""
    from train_audio import preparation_step1

    videos = tmp_path_factory.mktemp("videos")
    for name in ("bbaf2n.mpg", "lbbc2a.mpg"):
        (videos / name).symlink_to(sample_data / "av" / "grid" / name)
    out = tmp_path_factory.mktemp("bases")
    assert preparation_step1.main([str(videos), str(out)]) == 0
    return out


def test_step1_writes_both_bases_and_targets(step1_out):
    for name in ("blendshape_basis.npz", "pixel_basis.npz", "blendshape_basis.png", "pixel_basis.png"):
        assert (step1_out / name).is_file()
    for stem in ("bbaf2n", "lbbc2a"):
        assert (step1_out / "clips" / f"{stem}.wav").is_file()
        bs = np.loadtxt(step1_out / "clips" / f"{stem}.bs.txt")
        px = np.loadtxt(step1_out / "clips" / f"{stem}.pixel.txt")
        assert bs.shape == px.shape == (75, 6)


def test_blendshape_component0_opens_the_mouth(step1_out):
    from talkingface.run_utils import load_mean_face

    basis = BlendshapeBasis.load(step1_out / "blendshape_basis.npz")
    k = len(basis.landmark_ids)
    assert basis.mean.shape == (k, 3) and basis.components.shape == (6, k, 3) and basis.coef_std.shape == (6,)
    assert (basis.coef_std > 0).all()
    # mean lies in the canonical mean-face space: close to the mean face's own points
    canon = load_mean_face()[basis.landmark_ids]
    assert np.median(np.linalg.norm(basis.mean - canon, axis=1)) < 15
    pos = {int(m): i for i, m in enumerate(basis.landmark_ids)}
    lo, up = pos[MP_LOWER_INNER_LIP_MID], pos[MP_UPPER_INNER_LIP_MID]
    gaps = []
    for m in (-2, 0, 2):
        shape = basis.decode(np.array([m * basis.coef_std[0], 0, 0, 0, 0, 0]))
        gaps.append(shape[lo, 1] - shape[up, 1])
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] - gaps[1] > 3.0  # a visible opening in canonical units (face ~400 wide)


def test_first_coefficient_tracks_measured_opening(step1_out):
    with np.load(step1_out / "clips" / "bbaf2n.clip.npz") as d:
        opening = mouth_opening(d["normalized"].astype(np.float64))
    coef0 = np.loadtxt(step1_out / "clips" / "bbaf2n.bs.txt")[:, 0]
    assert np.corrcoef(opening, coef0)[0, 1] > 0.8
    px0 = np.loadtxt(step1_out / "clips" / "bbaf2n.pixel.txt")[:, 0]
    assert np.corrcoef(opening, px0)[0, 1] > 0.5


def test_pixel_basis_roundtrip(step1_out, tmp_path):
    basis = PixelBasis.load(step1_out / "pixel_basis.npz")
    assert basis.mean.shape == (1350,) and basis.components.shape == (6, 1350)
    imgs = basis.decode(np.zeros((4, 6)))
    assert imgs.shape == (4, 15, 30, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs[0], imgs[0][:, ::-1])  # symmetrised
    basis.save(tmp_path / "p.npz")
    again = PixelBasis.load(tmp_path / "p.npz")
    np.testing.assert_allclose(again.components, basis.components, atol=1e-6)


def test_basis_load_errors(tmp_path):
    with pytest.raises(UserInputError):
        BlendshapeBasis.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(UserInputError, match="not a mouth basis"):
        PixelBasis.load(tmp_path / "other.npz")


def test_original_pca_pkl_is_opt_in(sample_data):
    path = sample_data / "dh_live" / "data" / "pca.pkl"
    with pytest.raises(UserInputError, match="opt-in"):
        read_original_pca_pkl(path)
    pytest.importorskip("sklearn")
    basis = read_original_pca_pkl(path, allow_pickle=True)
    assert basis.components.shape == (6, 1350)
    img = basis.decode(np.zeros(6))
    assert img.shape == (15, 30, 3) and 30 < img.mean() < 230
