"""``hwsim serve``: an event-driven simulation of serving many requests on one device.

Requests arrive (:mod:`.arrivals`, lengths from :mod:`.distributions`), a scheduler (:mod:`.schedulers`: vLLM-style
continuous batching, Sarathi-style chunked prefill, static batching) decides each iteration's batch against a paged
KV cache (:mod:`.kv_cache`), and every iteration is costed by lowering its workloads through the target's plugin and
running the engine (:mod:`.cost_model`). :mod:`.loop` advances time from event to event; :mod:`.metrics` turns the
requests' timestamps into latency percentiles, throughput and goodput; :mod:`.outputs` writes tables, traces and
plots; :mod:`.rate_sweep` runs the same setup over several arrival rates.
"""
