"""python -m imagepipe.registry: the registry's command line (imagepipe.registry.cli)."""

from imagepipe.registry.cli import main

if __name__ == "__main__":
    main()
