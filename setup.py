"""Build the compiled operators (C, no numpy headers needed: buffers only)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "vermilion.core._operators",
            sources=["src/vermilion/core/_operators.c"],
            extra_compile_args=["-O3"],
        )
    ]
)
