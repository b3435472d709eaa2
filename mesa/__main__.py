import sys

from mesa.lab.cli import main

sys.exit(main())
