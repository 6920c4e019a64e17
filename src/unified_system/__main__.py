from unified_system.cli import main

raise SystemExit(main())
