"""Build hook: the metadata lives in setup.cfg; this file only adds the C extension, which setup.cfg cannot declare.

The extension (the streaming XML engine's callbacks in C) is optional at build time: without a compiler the
package still installs and the pure-Python engines read every file, only slower. The test suite requires it
(tests/domain/algorithms/parsing/test_xmlnative.py), so a checkout where it failed to build does not pass CI.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "domain.algorithms.parsing._xmlscan",
            ["domain/algorithms/parsing/_xmlscan.c"],
            # No fused multiply-add: the timestamp arithmetic must round exactly as numpy's does.
            extra_compile_args=["-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ],
)
