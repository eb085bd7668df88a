"""DH_live_mini training data: mouth crop rule, code-generated teeth labels on real frames, procedural
teeth references, and the (source, ref, target) sample recipe."""
import numpy as np
import pytest
import torch

from talkingface.data import teeth_labels as T
from talkingface.data.DHLive_mini_dataset import DHLiveMiniDataset, MiniDatasetConfig, prepare_video
from talkingface.data.mouth_crop import crop_mouth, video_mouth_rects


@pytest.fixture(scope="module")
def smiling_clip(sample_data):
    """25 frames of a real MEAD clip where the speaker shows both teeth rows."""
    return prepare_video(sample_data / "av/mead/W009_front_happy_level3_001.mp4", max_frames=25)


def test_crop_mouth_rule():
    lm = np.zeros((478, 3))
    from talkingface.utils import MP_FACE_OVAL_LOWER, MP_LIPS_OUTER

    lm[MP_LIPS_OUTER + MP_FACE_OVAL_LOWER, :2] = [100.0, 200.0]
    lm[MP_FACE_OVAL_LOWER[0], :2] = [0.0, 150.0]
    lm[MP_FACE_OVAL_LOWER[1], :2] = [200.0, 300.0]  # oval extent 200 -> half-size 92
    x0, y0, x1, y1 = crop_mouth(lm)
    assert (x0, x1) == pytest.approx((8.0, 192.0))
    assert (y0, y1) == pytest.approx((200 - 0.89 * 92, 200 + 1.11 * 92))
    with pytest.raises(ValueError, match="frame 0"):  # a mouth beyond the left edge is refused
        video_mouth_rects(lm[None] - [150.0, 0.0, 0.0], (400, 400))


def test_teeth_labels_on_real_frames(smiling_clip):
    v = smiling_clip
    assert v.images.shape[1:] == (88, 88, 3) and v.labels.shape[1:] == (88, 88)
    has_upper = (v.labels == T.UPPER_TEETH).any(axis=(1, 2))
    assert has_upper.mean() > 0.5, "a smiling speaker shows upper teeth in most frames"
    i = int(np.argmax(v.opening))
    lab = v.labels[i]
    opening = T.lip_labels(v.landmarks[i], lab.shape) == T.CAVITY
    teeth = (lab == T.UPPER_TEETH) | (lab == T.LOWER_TEETH)
    assert not (teeth & ~opening).any(), "teeth only inside the inner-lip polygon"
    ys_upper = np.nonzero(lab == T.UPPER_TEETH)[0]
    ys_lower = np.nonzero(lab == T.LOWER_TEETH)[0]
    if len(ys_lower):
        assert ys_upper.mean() < ys_lower.mean()
    # teeth are brighter than the rest of the opening
    lightness = v.images[i].astype(float).mean(axis=2)
    assert lightness[teeth].mean() > lightness[opening & ~teeth].mean() + 20


def test_procedural_teeth_reference_is_deterministic():
    a, b, c = T.procedural_teeth_reference(5), T.procedural_teeth_reference(5), T.procedural_teeth_reference(6)
    assert a.shape == (72, 72, 4) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert set(np.unique(a[..., 3])) <= {0, 127, 255} and (a[..., 3] == 255).any() and (a[..., 3] == 127).any()
    assert (a[..., :3][a[..., 3] > 0] == 0).all(), "RGB only inside the opening, lips are in the lip map"


def test_dataset_sample(smiling_clip):
    ds = DHLiveMiniDataset([smiling_clip], MiniDatasetConfig(samples_per_epoch=8), seed=3)
    s = ds[0]
    assert s["source"].shape == (3, 72, 72) and s["ref"].shape == (12, 72, 72) and s["target"].shape == (3, 72, 72)
    for k in ("source", "ref", "target"):
        assert s[k].dtype == torch.float32 and 0.0 <= float(s[k].min()) and float(s[k].max()) <= 1.0
    again = ds[0]
    for k in s:
        assert torch.equal(s[k], again[k]), "items are reproducible"
    # source = target outside the mouth, GL label colours inside
    mouth = s["mouth_mask"][0] > 0
    assert torch.equal(s["source"][:, ~mouth], s["target"][:, ~mouth])
    colours = {tuple(np.round(c, 2)) for c in s["source"][:, mouth].T.numpy()}
    assert colours <= {(1.0, 0.0, 0.0), (0.5, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)}
    assert (1.0, 0.0, 0.0) in colours and (0.5, 0.0, 0.0) in colours
    # reference lip maps: 255 upper lip, 127 lower lip
    lip_values = set(np.unique(np.round(s["ref"][3].numpy() * 255)).astype(int))
    assert lip_values <= {0, 127, 255} and {127, 255} <= lip_values


def test_renderer_teeth_labels(smiling_clip):
    CAVITY, UPPER_TEETH, LOWER_TEETH = T.CAVITY, T.UPPER_TEETH, T.LOWER_TEETH
    order = np.argsort(smiling_clip.opening)
    wide, closed = order[-1], order[0]
    labels = smiling_clip.labels[wide]
    out = T.renderer_teeth_labels(labels, smiling_clip.landmarks[wide])
    # lips and skin are kept; the opening is re-labelled: upper teeth above lower teeth, cavity between
    assert np.array_equal(out < CAVITY, labels < CAVITY)
    assert np.array_equal(out[labels < CAVITY], labels[labels < CAVITY])
    ys_up, _ = np.nonzero(out == UPPER_TEETH)
    ys_low, _ = np.nonzero(out == LOWER_TEETH)
    assert len(ys_up) > 10 and len(ys_low) > 10 and ys_up.mean() < ys_low.mean()
    assert (out == CAVITY).sum() > 0.3 * (labels >= CAVITY).sum()
    # the teeth take a smaller share of a smaller opening (they appear gradually as the mouth opens)
    shut = T.renderer_teeth_labels(smiling_clip.labels[closed], smiling_clip.landmarks[closed])
    share_wide = (out >= UPPER_TEETH).sum() / (out >= CAVITY).sum()
    share_shut = (shut >= UPPER_TEETH).sum() / max((shut >= CAVITY).sum(), 1)
    assert share_shut < share_wide < 0.7


def test_renderer_teeth_labels_follow_the_segmentation(smiling_clip):
    """With follow_segmentation a band is drawn only for a teeth row the frame shows."""
    wide = int(np.argmax(smiling_clip.opening))
    labels, lm = smiling_clip.labels[wide], smiling_clip.landmarks[wide]
    assert (labels == T.UPPER_TEETH).sum() >= 6 and (labels == T.LOWER_TEETH).sum() >= 6
    both = T.renderer_teeth_labels(labels, lm, follow_segmentation=True)
    assert np.array_equal(both, T.renderer_teeth_labels(labels, lm))
    no_lower = labels.copy()
    no_lower[no_lower == T.LOWER_TEETH] = T.CAVITY
    upper_only = T.renderer_teeth_labels(no_lower, lm, follow_segmentation=True)
    assert (upper_only == T.UPPER_TEETH).sum() > 10 and not (upper_only == T.LOWER_TEETH).any()
    dark = labels.copy()
    dark[dark >= T.CAVITY] = T.CAVITY
    cavity_only = T.renderer_teeth_labels(dark, lm, follow_segmentation=True)
    assert np.array_equal(cavity_only, dark)


def test_teeth_stay_inside_the_opening():
    """OpenCV's opening with a 2x2 kernel can move a pixel by one; teeth found at the opening's
    edge used to land in a column without opening and crash the row assignment (a real avatar
    video, av_more 00285b43…, failed in data_preparation_web). Random openings with bright
    patches: every teeth label lies inside the opening, and nothing raises."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        labels = np.zeros((40, 40), np.uint8)
        labels[8:14, 5:35] = T.UPPER_LIP
        labels[26:32, 5:35] = T.LOWER_LIP
        y0, x0 = rng.integers(14, 20), rng.integers(8, 20)
        labels[y0:y0 + rng.integers(3, 12), x0:x0 + rng.integers(4, 14)] = T.CAVITY
        image = np.full((40, 40, 3), (150, 60, 70), np.uint8)  # red lips
        opening = labels == T.CAVITY
        image[opening] = (20, 10, 10)
        bright = opening & (rng.random((40, 40)) < 0.6)
        image[bright] = (235, 235, 230)
        out = T.segment_teeth(image, labels)
        teeth = (out == T.UPPER_TEETH) | (out == T.LOWER_TEETH)
        assert not (teeth & ~opening).any()
