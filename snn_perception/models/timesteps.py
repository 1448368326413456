"""The timesteps any model of this package accepts; every T check in the package uses these.

A module of its own with no imports, so the launch file and the CLI's argument checks can use it
without loading torch (the launch file must not pay for it; the CLI sets tqdm's switch first).
"""

MIN_TIMESTEPS, MAX_TIMESTEPS = 1, 64
