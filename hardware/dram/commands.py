"""Names of the DRAM commands the in-repo users issue (the open-row controller, the AiM timer).

Which commands a standard has, what each addresses and does, and how they are timed is the standard's data
(``commands:`` and ``constraints:`` in ``hardware/presets/dram/*.yaml``); a standard may declare commands not
listed here and a channel issues them by name. These members are just the canonical objects for the common names
(the generated issue code compares commands by identity first).
"""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    """Common command names (AIM-SIM names of the SK hynix GDDR6-AiM ones in brackets)."""

    ACT = "ACT"  # open a row in one bank
    PRE = "PRE"  # close one bank
    PREA = "PREA"  # close every bank
    RD = "RD"  # read one burst from the open row
    WR = "WR"  # write one burst to the open row
    REF = "REF"  # all-bank refresh; every bank must be closed
    ACT_AB = "ACT_AB"  # open the same row in all banks [ACT16]
    MAC_ABK = "MAC_ABK"  # 256-b MAC in every bank against the global buffer [MAC16]
    RD_MAC = "RD_MAC"  # read the per-bank MAC results over the data bus [RDMAC16]
    WR_GB = "WR_GB"  # write one burst into the global buffer [WRGB]
