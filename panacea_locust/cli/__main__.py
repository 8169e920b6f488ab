"""``python -m panacea_locust.cli``: the same as the ``panacea-locust`` console script."""

import sys

from panacea_locust.cli import main

sys.exit(main())
