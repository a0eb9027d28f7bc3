"""Processing-in-memory DRAM: AiM-style all-bank MAC units in GDDR6 banks plus the PIM-GPT ASIC."""
