"""Declare the C extension; every other piece of metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kitefeed.ringbuf._atomics",
            sources=["kitefeed/ringbuf/_atomics.c"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
)
