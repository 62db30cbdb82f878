from poke2video.cli import main

raise SystemExit(main())
