"""`python -m gpucloud`: the same as the `gpucloud` command."""

from gpucloud.cli import main

main()
