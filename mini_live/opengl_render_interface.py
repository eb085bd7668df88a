"""Offscreen OpenGL 3.3 core: context creation (headless EGL or a hidden glfw window), shaders, FBO.

Backends
- ``egl``: headless, no display needed. Uses Mesa's surfaceless platform
  (``eglGetPlatformDisplayEXT(EGL_PLATFORM_SURFACELESS_MESA)``), falling back to the default display;
  llvmpipe renders on the CPU, a GPU driver is used when present.
- ``glfw``: a hidden window (needs ``$DISPLAY`` / ``$WAYLAND_DISPLAY``), e.g. for ``demo_avatar``.
- ``auto`` (default): ``$TALKINGFACE_GL_BACKEND`` when set, else ``glfw`` if a display exists, else ``egl``.

Either way the context is 3.3 core and drawing goes to a framebuffer object, never to a window, so
the read-back does not depend on window visibility or HiDPI scaling (docs/REFERENCE.md §9.19).

PyOpenGL picks its platform (``PYOPENGL_PLATFORM``) once, when ``OpenGL`` is first imported. This
module therefore imports PyOpenGL lazily, inside :func:`load_gl`, after setting the variable for the
chosen backend; and importing this module (e.g. through ``mini_live.render``) before anything imports
OpenGL already sets ``PYOPENGL_PLATFORM=egl`` when the automatic choice is EGL and the variable is unset,
so later ``import OpenGL`` elsewhere agrees. If PyOpenGL was already imported by someone else, its
platform is kept: a glfw window then asks glfw for an EGL context when PyOpenGL is on EGL, and asking
for ``egl`` when PyOpenGL is already on GLX raises a clear error.
"""
from __future__ import annotations

import ctypes
import logging
import os
import sys
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("auto", "egl", "glfw")
ENV_BACKEND = "TALKINGFACE_GL_BACKEND"
EGL_PLATFORM_SURFACELESS_MESA = 0x31DD


class GLError(RuntimeError):
    """OpenGL could not be set up (no backend, context creation or shader compilation failed)."""


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _pyopengl_platform() -> Optional[str]:
    """The platform an already-imported PyOpenGL uses ('egl', 'glx', ...), or None if not imported yet."""
    if "OpenGL.platform" not in sys.modules:
        return None
    name = type(sys.modules["OpenGL.platform"].PLATFORM).__name__.lower()
    for key in ("egl", "glx", "osmesa", "wgl", "darwin"):
        if key in name:
            return key
    return name


def resolve_backend(backend: str = "auto") -> str:
    """Turn ``auto|egl|glfw`` into the backend to use (see the module docstring)."""
    backend = (backend or "auto").lower()
    if backend not in BACKENDS:
        raise GLError(f"unknown GL backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        env = os.environ.get(ENV_BACKEND, "").lower()
        if env:
            if env not in BACKENDS[1:]:
                raise GLError(f"${ENV_BACKEND}={env!r}: use egl or glfw")
            return env
        return "glfw" if has_display() else "egl"
    return backend


def _preselect_platform() -> None:
    if _pyopengl_platform() is not None or "PYOPENGL_PLATFORM" in os.environ:
        return
    try:
        backend = resolve_backend("auto")
    except GLError:
        return
    if backend == "egl":
        os.environ["PYOPENGL_PLATFORM"] = "egl"


_preselect_platform()


def load_gl(backend: str):
    """Import and return PyOpenGL's ``GL`` module with the platform ``backend`` needs."""
    current = _pyopengl_platform()
    if current is None:
        if backend == "egl":
            os.environ["PYOPENGL_PLATFORM"] = "egl"
    elif backend == "egl" and current != "egl":
        raise GLError(f"PyOpenGL was already imported with the {current!r} platform; the EGL backend needs "
                      "PYOPENGL_PLATFORM=egl set before OpenGL is first imported (or use backend='glfw')")
    # Lazy: PyOpenGL picks its platform when first imported (see the module doc).
    from OpenGL import GL

    return GL


@dataclass
class GLContext:
    """A current OpenGL 3.3 core context. ``release()`` destroys it."""

    backend: str
    handle: object
    display: object = None
    window: object = None

    def make_current(self) -> None:
        if self.backend == "egl":
            # Lazy: PyOpenGL picks its platform when first imported (see the module doc).
            from OpenGL import EGL

            if not EGL.eglMakeCurrent(self.display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, self.handle):
                raise GLError("eglMakeCurrent failed")
        else:
            # Lazy: only the windowed backend needs glfw (a display).
            import glfw

            glfw.make_context_current(self.window)

    def release(self) -> None:
        if self.handle is None:
            return
        if self.backend == "egl":
            # Lazy: PyOpenGL picks its platform when first imported (see the module doc).
            from OpenGL import EGL

            EGL.eglMakeCurrent(self.display, EGL.EGL_NO_SURFACE, EGL.EGL_NO_SURFACE, EGL.EGL_NO_CONTEXT)
            EGL.eglDestroyContext(self.display, self.handle)
        else:
            # Lazy: only the windowed backend needs glfw (a display).
            import glfw

            glfw.destroy_window(self.window)
        self.handle = None


def _egl_display():
    # Lazy: PyOpenGL picks its platform when first imported (see the module doc).
    from OpenGL import EGL

    tried = []
    get_platform = getattr(EGL, "eglGetPlatformDisplayEXT", None)
    if get_platform is not None:
        try:
            dpy = get_platform(EGL_PLATFORM_SURFACELESS_MESA, EGL.EGL_DEFAULT_DISPLAY, None)
            tried.append("surfaceless")
            if dpy and dpy != EGL.EGL_NO_DISPLAY:
                major, minor = EGL.EGLint(), EGL.EGLint()
                if EGL.eglInitialize(dpy, ctypes.byref(major), ctypes.byref(minor)):
                    return dpy, (major.value, minor.value)
        except Exception as exc:  # the extension may be advertised but not usable
            log.debug("surfaceless EGL display failed: %s", exc)
    dpy = EGL.eglGetDisplay(EGL.EGL_DEFAULT_DISPLAY)
    tried.append("default")
    if dpy and dpy != EGL.EGL_NO_DISPLAY:
        major, minor = EGL.EGLint(), EGL.EGLint()
        try:
            if EGL.eglInitialize(dpy, ctypes.byref(major), ctypes.byref(minor)):
                return dpy, (major.value, minor.value)
        except Exception as exc:
            log.debug("default EGL display failed: %s", exc)
    raise GLError(f"no usable EGL display (tried: {', '.join(tried)}); install Mesa's libEGL (e.g. libegl1 "
                  "libgl1-mesa-dri) or run with a display and backend='glfw'")


def _create_egl_context() -> GLContext:
    # Lazy: PyOpenGL picks its platform when first imported (see the module doc).
    from OpenGL import EGL

    dpy, version = _egl_display()
    if not EGL.eglBindAPI(EGL.EGL_OPENGL_API):
        raise GLError("eglBindAPI(EGL_OPENGL_API) failed: this EGL has no desktop OpenGL")
    cfg_attrs = (EGL.EGLint * 5)(EGL.EGL_RENDERABLE_TYPE, EGL.EGL_OPENGL_BIT, EGL.EGL_SURFACE_TYPE,
                                 EGL.EGL_PBUFFER_BIT, EGL.EGL_NONE)
    cfg, n = EGL.EGLConfig(), EGL.EGLint()
    if not EGL.eglChooseConfig(dpy, cfg_attrs, ctypes.byref(cfg), 1, ctypes.byref(n)) or n.value < 1:
        cfg = EGL.EGL_NO_CONFIG_KHR  # configless contexts (EGL_KHR_no_config_context) need none
    ctx_attrs = (EGL.EGLint * 7)(EGL.EGL_CONTEXT_MAJOR_VERSION, 3, EGL.EGL_CONTEXT_MINOR_VERSION, 3,
                                 EGL.EGL_CONTEXT_OPENGL_PROFILE_MASK, EGL.EGL_CONTEXT_OPENGL_CORE_PROFILE_BIT,
                                 EGL.EGL_NONE)
    ctx = EGL.eglCreateContext(dpy, cfg, EGL.EGL_NO_CONTEXT, ctx_attrs)
    if not ctx or ctx == EGL.EGL_NO_CONTEXT:
        raise GLError("eglCreateContext(OpenGL 3.3 core) failed")
    context = GLContext("egl", ctx, display=dpy)
    context.make_current()
    log.debug("EGL %d.%d context", *version)
    return context


def _create_glfw_context(size: Tuple[int, int]) -> GLContext:
    # Lazy: only the windowed backend needs glfw (a display).
    import glfw

    if not glfw.init():
        raise GLError("glfw.init() failed (is a display available?)")
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)
    if _pyopengl_platform() == "egl" or os.environ.get("PYOPENGL_PLATFORM", "").lower() == "egl":
        glfw.window_hint(glfw.CONTEXT_CREATION_API, glfw.EGL_CONTEXT_API)
    window = glfw.create_window(size[0], size[1], "mouth renderer", None, None)
    if not window:
        raise GLError("glfw could not create a hidden OpenGL 3.3 core window")
    context = GLContext("glfw", window, window=window)
    context.make_current()
    return context


def create_context(backend: str = "auto", size: Tuple[int, int] = (256, 256)):
    """Create and make current a 3.3 core context. Returns ``(context, GL module)``."""
    backend = resolve_backend(backend)
    # Mesa's llvmpipe (the software renderer on machines without a GPU) hands each draw to worker
    # threads; our renders are 128-256 px, where the hand-off costs more than it saves: rendering in
    # the calling thread took 0.66 instead of 1.01 ms CPU per frame (two renders). Read when Mesa
    # creates its screen; a user's own setting wins.
    os.environ.setdefault("LP_NUM_THREADS", "0")
    gl = load_gl(backend)
    context = _create_egl_context() if backend == "egl" else _create_glfw_context(size)
    version = gl.glGetString(gl.GL_VERSION)
    renderer = gl.glGetString(gl.GL_RENDERER)
    log.info("OpenGL %s on %s via %s", version.decode() if version else "?",
             renderer.decode() if renderer else "?", backend)
    return context, gl


def compile_program(gl, vertex_src: str, fragment_src: str) -> int:
    """Compile and link a GLSL program; raises :class:`GLError` with the driver's log on failure."""
    shaders = []
    for kind, src in ((gl.GL_VERTEX_SHADER, vertex_src), (gl.GL_FRAGMENT_SHADER, fragment_src)):
        sh = gl.glCreateShader(kind)
        gl.glShaderSource(sh, src)
        gl.glCompileShader(sh)
        if not gl.glGetShaderiv(sh, gl.GL_COMPILE_STATUS):
            info = gl.glGetShaderInfoLog(sh)
            raise GLError(f"shader compilation failed: {info.decode(errors='replace') if info else ''}")
        shaders.append(sh)
    prog = gl.glCreateProgram()
    for sh in shaders:
        gl.glAttachShader(prog, sh)
    gl.glLinkProgram(prog)
    if not gl.glGetProgramiv(prog, gl.GL_LINK_STATUS):
        info = gl.glGetProgramInfoLog(prog)
        raise GLError(f"shader link failed: {info.decode(errors='replace') if info else ''}")
    for sh in shaders:
        gl.glDetachShader(prog, sh)
        gl.glDeleteShader(sh)
    return prog


class MeshProgram:
    """Base of the offscreen mesh renderers (``mini_live.render.MouthRenderer``,
    ``talkingface.moda_warp.FaceWarper``): one GL context with one framebuffer ``_fbo``, vertex array
    ``_vao``, texture ``_tex``, program ``_prog``, ``_n_index`` mesh indices and the buffers
    :meth:`_gl_buffers` names. :meth:`_draw` draws a frame; :meth:`close` frees them and the context (idempotent); usable as a context manager."""

    _ctx = None

    def _gl_buffers(self) -> list:
        """The GL buffer objects to delete on :meth:`close`."""
        raise NotImplementedError

    def _draw(self, buffer: int, data: np.ndarray) -> None:
        """Upload ``data`` (float32, contiguous) into the per-frame vertex ``buffer`` and draw the mesh's
        ``_n_index`` indices with the bound program, texture unit 0 = ``_tex``."""
        gl = self._gl
        gl.glActiveTexture(gl.GL_TEXTURE0)
        gl.glBindTexture(gl.GL_TEXTURE_2D, self._tex)
        gl.glBindVertexArray(self._vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, buffer)
        gl.glBufferSubData(gl.GL_ARRAY_BUFFER, 0, data.nbytes, data)
        gl.glDrawElements(gl.GL_TRIANGLES, self._n_index, gl.GL_UNSIGNED_INT, None)
        gl.glBindVertexArray(0)

    def close(self) -> None:
        """Free the GL objects and the context (idempotent)."""
        if getattr(self, "_ctx", None) is None or self._ctx.handle is None:
            return
        gl = self._gl
        try:
            self._ctx.make_current()
            self._fbo.release()
            buffers = self._gl_buffers()
            gl.glDeleteBuffers(len(buffers), buffers)
            gl.glDeleteVertexArrays(1, [self._vao])
            gl.glDeleteTextures([self._tex])
            gl.glDeleteProgram(self._prog)
        finally:
            self._ctx.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Framebuffer:
    """An RGBA8 + 24-bit depth framebuffer object of ``width x height`` with uint8 read-back."""

    def __init__(self, gl, width: int, height: int):
        self.gl, self.width, self.height = gl, int(width), int(height)
        self.fbo = gl.glGenFramebuffers(1)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self.fbo)
        self.color, self.depth = gl.glGenRenderbuffers(2)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self.color)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_RGBA8, self.width, self.height)
        gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, gl.GL_COLOR_ATTACHMENT0, gl.GL_RENDERBUFFER, self.color)
        gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self.depth)
        gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, gl.GL_DEPTH_COMPONENT24, self.width, self.height)
        gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, gl.GL_DEPTH_ATTACHMENT, gl.GL_RENDERBUFFER, self.depth)
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise GLError(f"framebuffer incomplete (status 0x{int(status):x})")
        self._buffer = np.empty((self.height, self.width, 4), np.uint8)

    def bind(self) -> None:
        self.gl.glBindFramebuffer(self.gl.GL_FRAMEBUFFER, self.fbo)
        self.gl.glViewport(0, 0, self.width, self.height)

    def read(self, region=None):
        """The colour buffer as (H, W, 4) uint8, row 0 = GL y 0 (bottom of the viewport). A copy.

        ``region`` (x0, y0, x1, y1) in GL window pixels: read only that rectangle ((y1-y0, x1-x0, 4))."""
        import numpy as np

        gl = self.gl
        gl.glReadBuffer(gl.GL_COLOR_ATTACHMENT0)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 1)
        if region is None:
            gl.glReadPixels(0, 0, self.width, self.height, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, self._buffer)
            return self._buffer.copy()
        x0, y0, x1, y1 = (int(v) for v in region)
        out = np.empty((y1 - y0, x1 - x0, 4), np.uint8)
        gl.glReadPixels(x0, y0, x1 - x0, y1 - y0, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE, out)
        return out

    def release(self) -> None:
        gl = self.gl
        gl.glDeleteFramebuffers(1, [self.fbo])
        gl.glDeleteRenderbuffers(2, [self.color, self.depth])
