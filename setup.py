"""Build glue for the C extension; all other metadata lives in pyproject.toml."""

import os

from setuptools import Extension, setup

extra_compile_args = ["-O2", "-std=c11", "-Wall", "-Wextra"]
extra_link_args = []
# `make sanitize` builds with ASan + UBSan through this variable.
sanitize = os.environ.get("LINEKEEPER_SANITIZE")
if sanitize:
    flags = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer", "-O1", "-g"]
    extra_compile_args += flags
    extra_link_args += flags

setup(
    ext_modules=[
        Extension(
            "firmware.ring._cring",
            sources=["firmware/ring/_cring.c"],
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
    ]
)
