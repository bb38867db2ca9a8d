"""Converts a Volume to a SimpleITK image with the same voxels and geometry. Must not import Qt."""

from __future__ import annotations

import SimpleITK as sitk

from app.volume import Volume


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image (x, y, z index order) sharing the volume's spacing, origin and direction.

    An ITK image is evenly spaced: a series with a gap (Volume.gaps) comes out with its slices
    at the usual spacing, as the 2-D views stack them."""
    image = sitk.GetImageFromArray(volume.voxels)
    image.SetSpacing(tuple(float(v) for v in volume.spacing[::-1]))
    image.SetOrigin(tuple(float(v) for v in volume.origin))
    image.SetDirection(tuple(float(v) for v in volume.direction.ravel()))
    return image
