"""``python -m stopgrad``."""

import sys

from stopgrad.cli import main

sys.exit(main())
