"""Run the exporter with ``python -m pipeline_exporter``."""

import sys

from pipeline_exporter.cli import main

sys.exit(main())
