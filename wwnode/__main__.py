"""``python -m wwnode``: the ``wwnode`` command, where its script is not on the PATH."""

import sys

from .tools.cli import main

sys.exit(main())
