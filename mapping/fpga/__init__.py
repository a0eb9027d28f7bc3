"""FPGA mappers: layer-sequential streaming for large models (:mod:`.mapper`), a per-layer dataflow pipeline
for small models (:mod:`.pipeline`) and hls4ml project emission (:mod:`.hls`)."""
