"""The FPGA target: device schema (:mod:`.spec`) and hls4ml-style layer cost models (:mod:`.dense`,
:mod:`.layers`, :mod:`.pipeline`)."""
