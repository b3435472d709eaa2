import sys

from mesa.lab.cli.main import main

sys.exit(main())
