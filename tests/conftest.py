import os
import warnings


# Amaranth deprecations are errors in this project (style.md, habit 7).
warnings.filterwarnings("error", category=DeprecationWarning, module="amaranth")


def pytest_configure(config):
    # Builds are cached across runs under RRAMCIM_CACHE (default ~/.cache/rramcim).
    os.environ.setdefault("PYTHONWARNINGS", "error::DeprecationWarning:amaranth")
