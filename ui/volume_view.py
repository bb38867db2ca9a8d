"""3-D view: VTK volume rendering of the CT with the attention heatmap as a second coloured volume.

VTK renders off-screen (EGL/OSMesa or a hidden window) and the widget shows the image, so the
same code works on a desktop, under Xvfb and in off-screen tests. Drag to rotate, wheel to zoom.
The CT is downsampled (max 128 voxels per axis) for interactive speed.

The ray caster runs on the CPU (it needs no GPU), so a frame's cost grows with the rays cast:
a 900 x 800 view at one ray per pixel takes about 0.9 s on the 2-core development machine. A frame is
therefore cast with at most `STILL_RAYS` rays (image sample distance >= 1 pixel, the gaps
interpolated by VTK), and while the reader drags or zooms with at most `MOVING_RAYS` and a
coarser step along the ray; mouse moves that arrive during a frame are merged into the next one,
and `SETTLE_MS` after the last move the still frame follows. `medmpt bench view` measures them.
"""

from __future__ import annotations

import math

import numpy as np
import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL render window)
import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import vtkFloatArray
from vtkmodules.vtkCommonDataModel import vtkImageData, vtkPiecewiseFunction
from vtkmodules.vtkRenderingCore import (
    vtkColorTransferFunction,
    vtkRenderer,
    vtkRenderWindow,
    vtkVolume,
    vtkVolumeProperty,
    vtkWindowToImageFilter,
)
from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

from app.volume import Volume

MAX_VOXELS_PER_AXIS = 128
STILL_RAYS = 180_000  # at most this many rays per still frame (about 0.26 s on 2 cores)
MOVING_RAYS = 45_000  # while rotating or zooming (about 0.09 s on 2 cores)
STILL_STEP, MOVING_STEP = 1.0, 2.0  # sample distance along a ray (mm)
SETTLE_MS = 300  # the still frame follows this long after the last move

# Transfer functions. The CT in greys (soft tissue faint, bone white), so the heatmap's hot
# colours stand out and the lungs behind the chest wall stay visible: (HU, colour) and (HU,
# opacity per unit length). The heatmap: (relevance 0..1, colour) and (relevance, opacity, scaled
# by the view's heat opacity).
CT_COLOUR = ((-1000, (0, 0, 0)), (-600, (0.25, 0.27, 0.3)), (40, (0.55, 0.58, 0.62)), (300, (0.9, 0.88, 0.82)),
             (1500, (1, 1, 1)))
GAP_HU = -1000  # planes inside a gap: air, which the opacity curve leaves transparent
CT_OPACITY = ((-1000, 0.0), (-700, 0.0), (-400, 0.002), (0, 0.006), (150, 0.02), (300, 0.15), (700, 0.5),
              (1500, 0.8))
HEAT_COLOUR = ((0.0, (0.6, 0, 0)), (0.5, (1, 0.35, 0)), (1.0, (1, 1, 0.2)))
HEAT_OPACITY = ((0.0, 0.0), (0.25, 0.0), (0.5, 0.4), (1.0, 1.0))


def sample_distances(width: int, height: int, moving: bool,
                     budget: tuple[float, float] = (STILL_RAYS, MOVING_RAYS)) -> tuple[float, float]:
    """(image sample distance in pixels, sample distance along the ray in mm) for a frame of
    `width` x `height` pixels: one ray per pixel when that stays under the (still, moving) ray
    budget."""
    rays = budget[1] if moving else budget[0]
    return max(1.0, math.sqrt(width * height / rays)), (MOVING_STEP if moving else STILL_STEP)


def _stride(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(max(1, int(np.ceil(n / MAX_VOXELS_PER_AXIS))) for n in shape)  # type: ignore[return-value]


def _planes(array: np.ndarray, planes: np.ndarray, sy: int, sx: int, fill: float) -> np.ndarray:
    """array[planes, ::sy, ::sx], with `fill` where a plane is -1 (inside a gap); a view, not a
    copy, when the planes are slices at a fixed stride."""
    step = int(planes[1] - planes[0]) if len(planes) > 1 else 1
    if step > 0 and planes[0] >= 0 and np.array_equal(planes, planes[0] + step * np.arange(len(planes))):
        return array[planes[0]:planes[-1] + 1:step, ::sy, ::sx]
    out = array[np.maximum(planes, 0), ::sy, ::sx]
    out[planes < 0] = fill
    return out


def _image_data(ct: np.ndarray, heat: np.ndarray, spacing_xyz: tuple[float, float, float],
                origin: tuple[float, float, float]) -> vtkImageData:
    """Two-component float image: HU and relevance (0..1), x fastest as VTK expects."""
    z, y, x = ct.shape
    data = np.stack([ct.astype(np.float32), heat.astype(np.float32)], axis=-1).reshape(-1, 2)
    image = vtkImageData()
    image.SetDimensions(x, y, z)
    image.SetSpacing(*spacing_xyz)
    image.SetOrigin(*origin)
    array = numpy_to_vtk(data, deep=True, array_type=vtkFloatArray().GetDataType())
    array.SetName("ct_and_heat")
    image.GetPointData().SetScalars(array)
    return image


def _volume_property(heat_opacity: float) -> vtkVolumeProperty:
    prop = vtkVolumeProperty()
    prop.IndependentComponentsOn()
    ct_colour = vtkColorTransferFunction()
    for hu, rgb in CT_COLOUR:
        ct_colour.AddRGBPoint(hu, *rgb)
    ct_opacity = vtkPiecewiseFunction()
    for hu, a in CT_OPACITY:
        ct_opacity.AddPoint(hu, a)
    heat_colour = vtkColorTransferFunction()
    for v, rgb in HEAT_COLOUR:
        heat_colour.AddRGBPoint(v, *rgb)
    heat_alpha = vtkPiecewiseFunction()
    for v, a in HEAT_OPACITY:
        heat_alpha.AddPoint(v, a * heat_opacity)
    prop.SetColor(0, ct_colour)
    prop.SetScalarOpacity(0, ct_opacity)
    prop.SetColor(1, heat_colour)
    prop.SetScalarOpacity(1, heat_alpha)
    prop.SetInterpolationTypeToLinear()
    prop.ShadeOff()
    return prop


def orientation_labels(camera, direction: np.ndarray) -> tuple[str, str, str, str]:
    """(left, right, top, bottom) patient-direction letters of the view's edges: the screen's
    axes (from the camera) taken into LPS through the volume's direction cosines, each named by
    its largest component (L/R, P/A, S/I)."""
    up = np.asarray(camera.GetViewUp(), dtype=np.float64)
    right = np.cross(np.asarray(camera.GetDirectionOfProjection(), dtype=np.float64), up)

    def letter(vector: np.ndarray) -> str:
        lps = np.asarray(direction, dtype=np.float64) @ vector
        axis = int(np.argmax(np.abs(lps)))
        return ("L", "P", "S")[axis] if lps[axis] > 0 else ("R", "A", "I")[axis]

    return letter(-right), letter(right), letter(up), letter(-up)


class VolumeView(QWidget):
    """Shows an off-screen VTK rendering; re-renders on rotation, zoom and new data."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("volumeView")
        self.setMinimumSize(200, 200)
        self.renderer = vtkRenderer()
        self.renderer.SetBackground(0.02, 0.02, 0.03)
        self.window = vtkRenderWindow()
        self.window.SetOffScreenRendering(1)
        self.window.AddRenderer(self.renderer)
        self.volume_actor: vtkVolume | None = None
        self.heat_opacity = 0.8
        self._ct: np.ndarray | None = None
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None
        self._drag: QPointF | None = None
        self._direction = np.eye(3)
        self.last_frame: tuple[str, float] | None = None  # ("moving" | "still", image sample distance)
        self.ray_budget: tuple[float, float] = (STILL_RAYS, MOVING_RAYS)  # (still, moving) rays per frame
        self._moving_pending = QTimer(self, singleShot=True, interval=0)
        self._moving_pending.timeout.connect(self._render_moving)  # a bound method: no cycle keeps the view alive
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.render_image)

    def _render_moving(self) -> None:
        self.render_image(moving=True)

    def set_volume(self, volume: Volume | None, heat: np.ndarray | None = None) -> None:
        """Show `volume` (and a (Z, Y, X) heatmap, uint8 0..255 or float 0..1) in 3-D."""
        self.renderer.RemoveAllViewProps()
        self.volume_actor = None
        self._image = None
        if volume is None:
            self.update()
            return
        self._direction = np.asarray(volume.direction, dtype=np.float64)
        # Planes evenly spaced where the slices were acquired: a gap shows as an empty band, not
        # as anatomy pulled together (the 2-D views mark it with a dashed line instead).
        sources = volume.uniform_z_sources()
        sz, sy, sx = _stride((len(sources), *volume.shape[1:]))
        planes = sources[::sz]
        ct = _planes(volume.voxels, planes, sy, sx, fill=GAP_HU)
        if heat is None:
            h = np.zeros(ct.shape, np.float32)
        else:
            h = _planes(heat, planes, sy, sx, fill=0).astype(np.float32)
            h = h / 255.0 if heat.dtype == np.uint8 else h
        spacing = (volume.spacing[2] * sx, volume.spacing[1] * sy, volume.spacing[0] * sz)
        mapper = vtkFixedPointVolumeRayCastMapper()
        mapper.AutoAdjustSampleDistancesOff()  # our own budget (sample_distances), not VTK's timing
        mapper.SetInputData(_image_data(ct, h, spacing, volume.origin))
        actor = vtkVolume()
        actor.SetMapper(mapper)
        actor.SetProperty(_volume_property(self.heat_opacity))
        self.renderer.AddVolume(actor)
        self.volume_actor = actor
        camera = self.renderer.GetActiveCamera()
        # Look from the patient's front (anterior, -y in LPS), superior up, whatever the way the
        # volume's index axes lie in the patient (prone, feet first): LPS -> index axes = direction^T.
        to_index = self._direction.T
        camera.SetViewUp(*(to_index @ np.array([0.0, 0.0, 1.0])))
        camera.SetPosition(*(to_index @ np.array([0.0, -1.0, 0.0])))
        camera.SetFocalPoint(0, 0, 0)
        self.renderer.ResetCamera()
        camera.Zoom(1.3)
        self.render_image()

    def render_image(self, moving: bool = False) -> np.ndarray | None:
        """Render off-screen at the widget's size, at still or (while the reader drags or zooms)
        moving quality; returns the (H, W, 3) uint8 picture."""
        if self.volume_actor is None:
            return None
        w, h = max(self.width(), 64), max(self.height(), 64)
        image_step, ray_step = sample_distances(w, h, moving, self.ray_budget)
        mapper = self.volume_actor.GetMapper()
        mapper.SetImageSampleDistance(image_step)
        mapper.SetSampleDistance(ray_step)
        self.last_frame = ("moving" if moving else "still", image_step)
        self.window.SetSize(w, h)
        self.window.Render()
        grab = vtkWindowToImageFilter()
        grab.SetInput(self.window)
        grab.ReadFrontBufferOff()
        grab.ShouldRerenderOff()  # the frame was just rendered: by default the grab casts it again
        grab.Update()
        output = grab.GetOutput()
        width, height, _ = output.GetDimensions()
        pixels = vtk_to_numpy(output.GetPointData().GetScalars()).reshape(height, width, -1)[::-1, :, :3]
        self._buffer = np.ascontiguousarray(pixels, dtype=np.uint8)
        self._image = QImage(self._buffer.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        self.update()
        return self._buffer

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#050508"))
        if self._image is not None:
            painter.drawImage(self.rect(), self._image)
            painter.setPen(QColor("#e0c060"))  # as the slice views' orientation letters
            left, right, top, bottom = self.labels()
            w, h = self.width(), self.height()
            painter.drawText(6, h // 2, left)
            painter.drawText(w - 14, h // 2, right)
            painter.drawText(w // 2, 16, top)
            painter.drawText(w // 2, h - 6, bottom)
        else:
            painter.setPen(QColor("#7d8287"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "3-D view: open a series")
        painter.end()

    def labels(self) -> tuple[str, str, str, str]:
        """The patient directions at the view's left, right, top and bottom edges now."""
        return orientation_labels(self.renderer.GetActiveCamera(), self._direction)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self.volume_actor is not None and self.isVisible():
            self._moved()  # dragging a splitter resizes many times: coarse frames, then the still one

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._drag = event.position()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self._drag is None or self.volume_actor is None:
            return
        delta = event.position() - self._drag
        self._drag = event.position()
        camera = self.renderer.GetActiveCamera()
        camera.Azimuth(-delta.x() * 0.5)
        camera.Elevation(delta.y() * 0.5)
        camera.OrthogonalizeViewUp()
        self._moved()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._drag = None

    def wheelEvent(self, event) -> None:  # noqa: N802 (Qt name)
        if self.volume_actor is not None:
            self.renderer.GetActiveCamera().Zoom(1.1 if event.angleDelta().y() > 0 else 1 / 1.1)
            self._moved()

    def _moved(self) -> None:
        """The camera moved: one coarse frame as soon as the event loop is free (moves that arrive
        meanwhile only move the camera further), the still frame once the moves stop."""
        if not self._moving_pending.isActive():
            self._moving_pending.start()
        self._settle.start()
