"""`python -m agent dev|start|console|connect|download-files`."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
