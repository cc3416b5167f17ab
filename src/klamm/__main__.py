from klamm.cli.main import main

raise SystemExit(main())
