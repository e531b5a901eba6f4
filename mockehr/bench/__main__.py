import sys

from mockehr.bench.run import main

sys.exit(main())
