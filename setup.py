"""Declare the C extensions; every other piece of metadata lives in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "kitefeed.ringbuf._atomics",
            sources=["kitefeed/ringbuf/_atomics.c"],
            extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
        Extension(
            "kitefeed.parsers._decode",
            sources=["kitefeed/parsers/_decode.c"],
            # No fused multiply-add, so prices and change match the Python twin bit for bit.
            extra_compile_args=["-std=gnu11", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ],
)
