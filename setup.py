"""The one compiled part: the JACK process callback in C (plugin_host/rtjack.c).

Optional: without a C compiler the install still succeeds and the engine falls back to
a Python callback (which can miss cycles while other threads hold Python's lock).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("plugin_host._rtjack", ["plugin_host/rtjack.c"], optional=True,
                             extra_compile_args=["-O2", "-std=c11", "-Wall"])])
