"""The tangent-plane sky map."""

from __future__ import annotations

import numpy as np
import pytest

from vermilion.core.bbox import Box
from vermilion.repo.errors import DataIdError
from vermilion.repo.skymap import SkyMap


@pytest.fixture
def sky() -> SkyMap:
    return SkyMap.build("s", [3, 7], (4, 3), (100, 120), 0.25, patch_border=10, center=(150, 30))


def test_patch_ids_and_boxes(sky):
    tract = sky[7]
    assert tract.shape == (300, 480)
    p = tract.patch(5)  # x = 1, y = 1
    assert p.index == (1, 1)
    assert p.bbox == Box((100, 120), (100, 120))
    assert p.outer_bbox == Box((120, 140), (90, 110))
    assert tract.patch((1, 1)).id == 5
    corner = tract.patch(0)
    assert corner.outer_bbox == Box((110, 130), (0, 0))  # clipped to the tract
    assert [q.id for q in tract.patches] == list(range(12))
    with pytest.raises(DataIdError, match="Patch 12 is not in tract 7"):
        tract.patch(12)
    with pytest.raises(DataIdError, match="Tract 4 is not in skymap 's'"):
        sky[4]


def test_projection_matches_astropy_and_regions_contain_patches(sky):
    from lsst.sphgeom import LonLat, UnitVector3d

    tract = sky[3]
    ys = np.array([0.0, 17.5, 299.0, 150.0])
    xs = np.array([0.0, 400.0, 479.0, 10.0])
    ra, dec = tract.pixel_to_sky(ys, xs)
    ra_w, dec_w = tract.wcs.pixel_to_world_values(xs, ys)
    np.testing.assert_allclose(ra, ra_w, atol=1e-9)
    np.testing.assert_allclose(dec, dec_w, atol=1e-9)
    # North up, East left
    assert dec[2] > dec[0] and ra[1] < ra[0]
    # the tangent point is the tract centre
    cy, cx = tract.center_pixel
    np.testing.assert_allclose(tract.pixel_to_sky(cy, cx), tract.center, atol=1e-9)
    p = tract.patch(6)
    region = p.region()
    cy, cx = p.bbox.center
    inside = UnitVector3d(LonLat.fromDegrees(*(float(v) for v in tract.pixel_to_sky(cy, cx))))
    assert region.contains(inside)
    far = UnitVector3d(LonLat.fromDegrees(*(float(v) for v in tract.pixel_to_sky(cy, cx + 400))))
    assert not region.contains(far)
    # tracts given by id do not overlap
    assert not sky[3].region().contains(UnitVector3d(LonLat.fromDegrees(*sky[7].center)))


def test_json_round_trip_and_hash(sky):
    back = SkyMap.from_json(sky.to_json())
    assert back == sky
    assert back.sha1 == sky.sha1 and len(sky.sha1) == 20
    other = SkyMap.build("s", [3, 7], (4, 3), (100, 121), 0.25, patch_border=10, center=(150, 30))
    assert other.sha1 != sky.sha1
    data = sky.to_dict()
    data["version"] = 5
    with pytest.raises(ValueError, match="version 5"):
        SkyMap.from_dict(data)


@pytest.mark.parametrize(
    "kwargs",
    [{"patches": (0, 1)}, {"pixel_scale": 0}, {"patch_border": -1}, {"tracts": {0: (0, 95)}}],
)
def test_bad_geometry(kwargs):
    args = {"name": "x", "tracts": 1, **kwargs}
    with pytest.raises(ValueError):
        SkyMap.build(**args)
