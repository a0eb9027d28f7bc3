"""DRAM commands and how far each one reaches (one bank, every bank, or the channel's shared logic)."""

from __future__ import annotations

from enum import StrEnum


class Command(StrEnum):
    """Commands the channel model understands. AiM ones exist only for standards with an ``aim:`` section."""

    ACT = "ACT"  # open a row in one bank
    PRE = "PRE"  # close one bank
    PREA = "PREA"  # close every bank
    RD = "RD"  # read one burst from the open row
    WR = "WR"  # write one burst to the open row
    REF = "REF"  # all-bank refresh; every bank must be closed
    # SK hynix GDDR6-AiM (AIM-SIM names in brackets)
    ACT_AB = "ACT_AB"  # open the same row in all banks [ACT16]
    MAC_ABK = "MAC_ABK"  # 256-b MAC in every bank against the global buffer [MAC16]
    RD_MAC = "RD_MAC"  # read the per-bank MAC results over the data bus [RDMAC16]
    WR_GB = "WR_GB"  # write one burst into the global buffer [WRGB]


#: Commands that act on every bank of the channel at once.
ALL_BANK = frozenset({Command.PREA, Command.REF, Command.ACT_AB, Command.MAC_ABK})
#: Commands that touch no bank (channel-level buffers and registers).
NO_BANK = frozenset({Command.RD_MAC, Command.WR_GB})
#: Commands that need an ``aim:`` section in the standard.
AIM_ONLY = frozenset({Command.ACT_AB, Command.MAC_ABK, Command.RD_MAC, Command.WR_GB})
