"""What tests and benchmarks share: the GitHub emulator, process harnesses, git clones, content builders.

Never imported by product code (an import-linter contract); factories and strategies need the dev extra."""
