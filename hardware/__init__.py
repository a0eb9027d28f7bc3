"""Hardware layer: target descriptions (validated YAML presets with cited sources) and component models.

This is the ground floor of hwsim: it imports neither ``mapping`` nor ``simulator``. The user-error type
(:class:`hardware.errors.HwsimError`) and numeric formats (:mod:`hardware.dtypes`) live here because every
layer needs them.
"""
